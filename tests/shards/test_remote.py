"""synth-shards verify / stats / show on directory URLs (local S3 and HTTP servers), and refused URL forms."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from synthdata.shards import ShardDataset, dataset_stats, iter_samples, list_shards, verify_dataset
from synthdata.tools.shards import main

from ._helpers import flip_byte_in_member, make_dataset


def _demo(tmp_path: Path) -> Path:
    d = tmp_path / "demo"
    assert main(["make-demo", str(d), "--num-classes", "3", "--images-per-class", "4", "--size", "16", "--shard-size", "5"]) == 0
    return d


def test_verify_stats_show_on_s3(s3_server, tmp_path, capsys):
    d = _demo(tmp_path)
    url = s3_server.url("runs/demo")
    s3_server.upload(d, url)
    capsys.readouterr()
    assert main(["verify", url]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{url}: 3 shards, 12 samples: OK")

    assert main(["stats", url, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["samples"] == 12 and stats["shards"] == 3
    assert stats["bytes"] == sum(p.stat().st_size for p in list_shards(d))
    assert {v["count"] for v in stats["per_class"].values()} == {4}
    assert stats["per_class"]["2"]["name"] == "yellow diagonals"

    sheet = s3_server.url("sheets/sheet.png")
    assert main(["show", url, "--out", sheet, "--thumbs-per-class", "2"]) == 0
    local = tmp_path / "sheet.png"
    assert main(["show", str(d), "--out", str(local), "--thumbs-per-class", "2"]) == 0
    import fsspec

    assert fsspec.filesystem("s3").cat_file(sheet.removeprefix("s3://")) == local.read_bytes()


def test_verify_on_s3_finds_a_corrupt_shard(s3_server, tmp_path, capsys):
    d = make_dataset(tmp_path / "d", n=8, max_count=4)
    flip_byte_in_member(list_shards(d)[1])
    url = s3_server.url("d")
    s3_server.upload(d, url)
    report = verify_dataset(url)
    assert report.directory == url
    assert [(p.where, p.kind) for p in report.problems] == [
        ("t-000-000001.tar", "checksum mismatch"),
        ("t-000-000001.tar", "undecodable image"),
    ]
    assert report.samples == 8
    assert main(["verify", url]) == 1
    assert f"{url}: 2 shards, 8 samples: FAILED" in capsys.readouterr().out
    # the plain reader on the URL: nothing from the corrupt shard, the intact one whole
    keys = [s.key for s in iter_samples(url, on_error="skip")]
    assert keys == [f"k{i:04d}" for i in range(4)]


def test_iter_samples_and_dataset_on_s3_match_local(s3_server, tmp_path):
    d = make_dataset(tmp_path / "d", n=10, max_count=4)
    url = s3_server.url("d")
    s3_server.upload(d, url)
    remote = [(s.key, s.cls, s.meta, s.image.tobytes()) for s in iter_samples(url)]
    local = [(s.key, s.cls, s.meta, s.image.tobytes()) for s in iter_samples(d)]
    assert remote == local and len(remote) == 10
    assert ShardDataset.open(url).key_index() == ShardDataset.open(d).key_index()


def test_verify_and_stats_over_http(http_server, tmp_path, capsys):
    d = _demo(tmp_path)
    shutil.copytree(d, http_server.root / "demo")
    url = http_server.url("demo")
    capsys.readouterr()
    assert main(["verify", url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["directory"] == url and report["ok"] and report["samples"] == 12
    stats = dataset_stats(url)
    assert stats.samples == 12 and stats.bytes == sum(p.stat().st_size for p in list_shards(d))
    out = tmp_path / "sheet.png"
    assert main(["show", url, "--out", str(out)]) == 0
    with Image.open(out) as sheet:
        assert sheet.height >= 3 * 64


def test_verify_over_http_reports_a_truncated_shard(http_server, tmp_path):
    d = make_dataset(http_server.root / "d", n=8, max_count=4)
    shard = list_shards(d)[0]
    shard.write_bytes(shard.read_bytes()[:3000])
    report = verify_dataset(http_server.url("d"))
    kinds = {(p.where, p.kind) for p in report.problems}
    assert {(shard.name, "size mismatch"), (shard.name, "unreadable tar")} <= kinds
    assert not report.ok


def test_missing_url_directory_names_it_intact(http_server, capsys):
    url = http_server.url("nope")
    assert main(["verify", url]) == 1
    assert f"problem: {url}: missing: not a directory" in capsys.readouterr().out
    assert main(["stats", url]) == 2
    err = capsys.readouterr().err
    assert url in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["verify", "ftp://host/dir"],
        ["stats", "ftp://host/dir"],
        ["show", "ftp://host/dir", "--out", "x.png"],
        ["make-demo", "s3://bucket/demo", "--num-classes", "2", "--images-per-class", "1"],
        ["make-demo", "http://127.0.0.1:9/demo", "--num-classes", "2", "--images-per-class", "1"],
        ["index", "http://127.0.0.1:9/shards"],
        ["index", "https://example.invalid/shards"],
        ["export", "DIR", "--imagefolder", "s3://bucket/out"],
        ["export", "DIR", "--imagefolder", "http://127.0.0.1:9/out"],
        ["show", "DIR", "--out", "http://127.0.0.1:9/sheet.png"],
    ],
)
def test_refused_url_forms_exit_2_with_one_line_and_create_nothing(argv, tmp_path, monkeypatch, capsys):
    d = _demo(tmp_path)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    capsys.readouterr()
    argv = [str(d) if a == "DIR" else a for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # refused while parsing: the location options check what they are given
        code = exc.code
    assert code == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"synth-shards {argv[0]}: error:") and captured.err.count("\n") == 1
    url = next(a for a in argv if "://" in a)
    assert url in captured.err  # printed intact, not as "http:/127..."
    assert os.listdir(work) == []  # no folder named "s3:", "http:" or "ftp:"
    assert sorted(p.name for p in d.iterdir()) == sorted(p.name for p in _demo(tmp_path / "again").iterdir())
