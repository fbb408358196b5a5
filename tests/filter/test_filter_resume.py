"""Resumability: per-shard score checkpoints; a run killed with SIGKILL and rerun gives identical output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import synthdata.filter._job as job
from synthdata.clip import DEFAULT_TEMPLATES
from synthdata.filter import FilterConfig, filter_shards
from synthdata.shards import list_shards, make_demo, read_dataset_json, verify_dataset
from synthdata.tools.filter import main

CACHE = ".filter-scores"
TINY = ["--clip-model", "synthdata-tiny-rn", "--clip-pretrained", "none", "--device", "cpu"]


def _report(out):
    return out.with_name(out.name + ".report")  # scores, report and checkpoints live beside the shards


def _no_model(*args, **kwargs):
    raise AssertionError("the model should not be loaded: every shard is checkpointed")


def _cfg(**kw) -> FilterConfig:
    base = {"model": "synthdata-tiny-rn", "pretrained": "none", "num_workers": 0, "report": False}
    return FilterConfig(**(base | kw))


def test_rerun_reselects_from_checkpoints_without_the_model(demo_dir, tmp_path, monkeypatch):
    out = tmp_path / "F"
    classes = read_dataset_json(demo_dir).classes
    first = filter_shards(demo_dir, out, classes, DEFAULT_TEMPLATES[:2], _cfg(rule="topk", per_class=2))
    assert first.scored_now == 12 and first.shards_resumed == 0
    scores = (_report(out) / "scores.jsonl").read_text()
    monkeypatch.setattr(job, "load_clip", _no_model)
    again = filter_shards(demo_dir, out, classes, DEFAULT_TEMPLATES[:2], _cfg(rule="topk", per_class=1))
    assert again.scored_now == 0 and again.shards_resumed == 3
    assert again.kept == 4 and verify_dataset(out).ok
    rows_before = [json.loads(x) for x in scores.splitlines()]
    rows_after = [json.loads(x) for x in (_report(out) / "scores.jsonl").read_text().splitlines()]
    assert [(r["key"], r["confidence"]) for r in rows_before] == [
        (r["key"], r["confidence"]) for r in rows_after
    ]
    monkeypatch.undo()
    # other templates change the scores: the checkpoints are discarded and everything is rescored
    other = filter_shards(demo_dir, out, classes, DEFAULT_TEMPLATES[2:4], _cfg(rule="topk", per_class=1))
    assert other.scored_now == 12 and other.shards_resumed == 0


def test_changed_input_shard_is_rescored(tmp_path):
    src = make_demo(tmp_path / "A", classes=2, per_class=4, shard_size=4, size=32)
    out = tmp_path / "F"
    classes = read_dataset_json(src).classes
    filter_shards(src, out, classes, DEFAULT_TEMPLATES[:1], _cfg())
    side = list_shards(src)[0].with_suffix(".idx.json")
    obj = json.loads(side.read_text())
    obj["sha256"] = "0" * 64  # as if the shard had been regenerated
    side.write_text(json.dumps(obj))
    again = filter_shards(src, out, classes, DEFAULT_TEMPLATES[:1], _cfg())
    assert again.shards_resumed == 1 and again.scored_now == 4
    fresh = filter_shards(src, out, classes, DEFAULT_TEMPLATES[:1], _cfg(resume=False))
    assert fresh.shards_resumed == 0 and fresh.scored_now == 8


def _snapshot(out):
    files = {}
    for p in sorted([*out.iterdir(), *_report(out).iterdir()]):
        if p.name.startswith(".") or p.is_dir():
            continue
        if p.name == "dataset.json":
            obj = json.loads(p.read_text())
            obj.pop("created")
            files[p.name] = obj
        elif p.name == "report.json":
            obj = json.loads(p.read_text())
            files[p.name] = (obj["totals"], obj["classes"], obj["settings"])
        else:
            files[p.name] = p.read_bytes()
    return files


def test_sigkill_then_rerun_gives_identical_output(tmp_path, capsys):
    src = make_demo(tmp_path / "A", classes=3, per_class=4, shard_size=2, size=32)
    total = len(list_shards(src))
    out, ref = tmp_path / "F", tmp_path / "R"
    args = ["--in", str(src), "--keep-per-class", "2", "--workers", "0", "--batch-size", "1", "--no-report", *TINY]
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "synthdata.tools.filter", "--out", str(out), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.time() + 120
        while len(list((_report(out) / CACHE).glob("*.tar.jsonl"))) < 2 and time.time() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    checkpointed = len(list((_report(out) / CACHE).glob("*.tar.jsonl")))
    assert 2 <= checkpointed < total, "the kill should land mid-scoring"
    assert not (out / "dataset.json").exists()
    # the rerun and the uninterrupted reference run in this process: the checkpoints written by the killed
    # process must agree bit for bit with scores computed here
    assert main(["--out", str(out), *args]) == 0
    assert f"{checkpointed} input shard(s) from checkpoints" in capsys.readouterr().out
    assert main(["--out", str(ref), *args]) == 0
    assert verify_dataset(out).ok
    a, b = _snapshot(out), _snapshot(ref)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == b[name], name
