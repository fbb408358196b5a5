"""Run-level summary: each rank leaves its own in --out; the last to finish merges them into summary.json."""

import json

import pytest

from synthdata.diffusion.runner import SUMMARY_JSON, GenerateConfig, Prompt, rank_summary_name, run_generation
from synthdata.diffusion.runner._summary import RunSummary, finish_rank

from ._helpers import FakePipeline, prompt_records

PROMPTS = [Prompt(r["id"], r["class_index"], r["class_name"], r["prompt"]) for r in prompt_records(2)]


def _rank(out, monkeypatch, rank, world=2, **kw):
    """One rank as torchrun starts it: RANK/WORLD_SIZE in the environment, the split read from it."""
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(world))
    cfg = GenerateConfig(out=str(out), **({"images_per_prompt": 2, "shard_size": 5, "batch_size": 3} | kw))
    return run_generation(cfg, PROMPTS, pipeline=FakePipeline(), progress=False)


@pytest.fixture(autouse=True)
def _no_launcher(monkeypatch):
    for var in ("SLURM_JOB_ID", "SLURM_STEP_ID", "TORCHELASTIC_RUN_ID", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(var, raising=False)


def test_the_last_rank_writes_the_merged_summary(tmp_path, monkeypatch):
    out = tmp_path / "d"
    s1 = _rank(out, monkeypatch, 1)  # 12 items in shards of 5, 5, 2: rank 1 takes shard 1 (5 images)
    assert (out / rank_summary_name(1, 2)).exists() and not (out / SUMMARY_JSON).exists()
    assert s1.run_summary is None
    s0 = _rank(out, monkeypatch, 0)  # shards 0 and 2 (7 images), finishes last
    assert s0.run_summary == str(out / SUMMARY_JSON) and "run summary" in s0.line()
    merged = json.loads((out / SUMMARY_JSON).read_text())
    t = merged["totals"]
    assert merged["world_size"] == 2 and merged["dataset_complete"]
    assert (t["images"], t["samples"], t["shards_written"], t["shards_planned"]) == (12, 12, 3, 3)
    assert [r["rank"] for r in merged["ranks"]] == [0, 1] and [r["images"] for r in merged["ranks"]] == [7, 5]
    assert t["device_seconds"] == pytest.approx(s0.seconds + s1.seconds)
    assert t["wall_seconds"] >= max(s0.seconds, s1.seconds) and t["images_per_second"] > 0
    assert t["images_per_second_per_device"] == pytest.approx(12 / t["device_seconds"])
    assert merged["ranks"][1]["images_per_second"] == pytest.approx(s1.images_per_second)
    per_rank = json.loads((out / rank_summary_name(0, 2)).read_text())  # the per-rank files stay
    assert per_rank["images"] == 7 and per_rank["run"] == merged["run"]


def test_ranks_finishing_together_write_the_same_bytes(tmp_path, monkeypatch):
    out = tmp_path / "d"
    _rank(out, monkeypatch, 1)
    _rank(out, monkeypatch, 0)
    first = (out / SUMMARY_JSON).read_bytes()
    identity = json.loads(first)["run"]
    for rank in (1, 0):  # both see every file (a race): each merges the files, not its own view
        raw = json.loads((out / rank_summary_name(rank, 2)).read_text())
        fields = {k: raw[k] for k in RunSummary.__slots__}
        assert finish_rank(out, RunSummary(**fields), identity) == out / SUMMARY_JSON
        assert (out / SUMMARY_JSON).read_bytes() == first


def test_resume_and_other_runs(tmp_path, monkeypatch):
    out = tmp_path / "d"
    _rank(out, monkeypatch, 1)
    _rank(out, monkeypatch, 0)
    # a rerun with one process: the 2-rank summary is of another run and goes; the new one covers 1 rank
    s = _rank(out, monkeypatch, 0, world=1)
    assert s.images == 0 and s.shards_resumed == 3
    merged = json.loads((out / SUMMARY_JSON).read_text())
    assert merged["world_size"] == 1 and merged["totals"]["images_resumed"] == 12
    assert merged["totals"]["samples"] == 12 and merged["totals"]["images"] == 0
    # another launch (Slurm job ids differ): rank files of an earlier job are not merged with this one's
    monkeypatch.setenv("SLURM_JOB_ID", "101")
    _rank(tmp_path / "e", monkeypatch, 1)
    monkeypatch.setenv("SLURM_JOB_ID", "102")
    assert _rank(tmp_path / "e", monkeypatch, 0).run_summary is None
    assert not (tmp_path / "e" / SUMMARY_JSON).exists()
    _rank(tmp_path / "e", monkeypatch, 1)  # rank 1 of job 102 finishes: now the run is whole
    merged = json.loads((tmp_path / "e" / SUMMARY_JSON).read_text())
    t = merged["totals"]
    assert merged["run"]["launch"] == "slurm:102." and (t["images"], t["shards_resumed"]) == (7, 1)


def test_the_cli_prints_the_run_line_on_the_last_rank(tmp_path, monkeypatch, capsys):
    from synthdata.diffusion.runner import _run as runner_run
    from synthdata.tools.generate import main

    from ._helpers import write_prompts_file

    monkeypatch.setattr(runner_run, "build_pipeline", lambda cfg, **kw: FakePipeline())
    prompts = write_prompts_file(tmp_path / "p.jsonl")
    args = ["--prompts", str(prompts), "--out", str(tmp_path / "o"), "--shard-size", "4", "--quiet"]
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(args) == 0
    assert "run:" not in capsys.readouterr().out  # rank 0 has not finished
    monkeypatch.setenv("RANK", "0")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "run: 6 images on 2 rank(s)" in out and "images/s aggregate" in out and "dataset complete" in out
