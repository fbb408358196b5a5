"""synth-filter from and to object storage (a local S3 server), and from HTTP: the same shards, scores and
report as a local run of the same input; the remote output is complete only once dataset.json is there."""

from __future__ import annotations

import json

from synthdata.shards import ShardDataset, storage, verify_dataset
from synthdata.tools.filter import main

TINY = ["--smoke", "--device", "cpu", "--workers", "0", "--quiet"]


def _scores(location: str) -> list[dict]:
    rows = [json.loads(line) for line in storage.read_text(f"{location}.report/scores.jsonl").splitlines()]
    return [{k: v for k, v in r.items() if k != "shard"} for r in rows]


def test_s3_to_s3_equals_local(demo_dir, s3_server, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SYNTHDATA_STAGING", str(tmp_path / "staging"))
    src = s3_server.url("demo")
    s3_server.upload(demo_dir, src)
    out = s3_server.url("filtered")
    args = ["--classes-from-shards", "--keep-per-class", "2", *TINY]
    assert main(["--in", src, "--out", out, *args]) == 0
    local = tmp_path / "F"
    assert main(["--in", str(demo_dir), "--out", str(local), *args]) == 0
    remote, here = ShardDataset.open(out, require_info=True), ShardDataset.open(local, require_info=True)
    assert [s.name for s in remote.shards] == [s.name for s in here.shards]
    for a, b in zip(remote.shards, here.shards, strict=True):
        assert (a.sha256, a.keys) == (b.sha256, b.keys)
        assert storage.read_bytes(a.location) == (local / b.name).read_bytes()
    assert _scores(out) == _scores(str(local))
    names = set(storage.listdir(out))
    assert {"dataset.json", "_info.json", "README.md"} <= names
    assert not [n for n in names if n.endswith((".png", ".jsonl"))]  # the report lives beside the data
    assert {"report.json", "scores.jsonl"} <= set(storage.listdir(f"{out}.report"))
    assert verify_dataset(out).ok
    assert out in capsys.readouterr().out


def test_a_rerun_replaces_a_remote_output(demo_dir, s3_server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SYNTHDATA_STAGING", str(tmp_path / "staging"))
    src, out = s3_server.url("demo"), s3_server.url("F")
    s3_server.upload(demo_dir, src)
    assert main(["--in", src, "--out", out, "--keep-per-class", "3", "--shard-size", "2", *TINY]) == 0
    many = ShardDataset.open(out).shards
    assert main(["--in", src, "--out", out, "--keep-per-class", "1", "--shard-size", "2", *TINY]) == 0
    few = ShardDataset.open(out, require_info=True)
    assert len(few.shards) < len(many) and few.num_samples == 4
    assert set(storage.listdir(out, "*.tar")) == {s.name for s in few.shards}  # no stale shard left


def test_from_http(demo_dir, http_server, tmp_path) -> None:
    import shutil

    shutil.copytree(demo_dir, http_server.root / "demo")
    out = tmp_path / "F"
    assert main(["--in", http_server.url("demo"), "--out", str(out), "--keep-per-class", "2", *TINY]) == 0
    assert verify_dataset(out).ok and ShardDataset.open(out).num_samples == 8


def test_foreign_remote_output_is_refused(demo_dir, s3_server, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SYNTHDATA_STAGING", str(tmp_path / "staging"))
    src, out = s3_server.url("demo"), s3_server.url("mine")
    s3_server.upload(demo_dir, src)
    storage.write_bytes(f"{out}/notes.txt", b"keep me")
    assert main(["--in", src, "--out", out, *TINY]) == 2
    assert "not a synth-filter output" in capsys.readouterr().err
    assert storage.read_bytes(f"{out}/notes.txt") == b"keep me" and not (tmp_path / "staging").exists()
