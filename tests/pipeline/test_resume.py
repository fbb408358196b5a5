"""The resume rules, on toy stages that write small files (the real stages are in test_smoke_run.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthdata.tools._pipeline import runner
from synthdata.tools._pipeline.config import PipelineConfig, PipelineError
from synthdata.tools._pipeline.context import RunContext, Stage
from synthdata.tools._pipeline.stages import read_marker


class Toy:
    """Three chained stages: prompts writes a.json, generate copies it to b/, tune reads b/."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail: str | None = None

    def _a(self, ctx: RunContext) -> dict:
        self.calls.append("prompts")
        if self.fail == "prompts":
            raise RuntimeError("no weights")
        (ctx.path("a.json")).write_text(json.dumps({"seed": ctx.cfg.seed}))
        return {"n": 1}

    def _b(self, ctx: RunContext) -> dict:
        self.calls.append("generate")
        out = ctx.path("b")
        out.mkdir(exist_ok=True)
        for i in range(3):
            if (out / f"{i}.txt").exists():
                continue  # resumes inside its own output
            if self.fail == "generate" and i == 1:
                raise RuntimeError("killed")
            (out / f"{i}.txt").write_text(ctx.path("a.json").read_text() + str(i))
        return {}

    def _c(self, ctx: RunContext) -> dict:
        self.calls.append("tune")
        ctx.path("c.json").write_text(json.dumps({"files": len(list(ctx.path("b").iterdir()))}))
        return {}

    def stages(self) -> list[Stage]:
        return [
            Stage("prompts", ("a.json",), lambda ctx: {}, self._a),
            Stage("generate", ("b",), lambda ctx: {"a": ctx.path("a.json")}, self._b, keep_partial=True),
            Stage("tune", ("c.json",), lambda ctx: {"b": ctx.path("b")}, self._c),
        ]


@pytest.fixture
def toy(monkeypatch):
    t = Toy()
    monkeypatch.setattr(runner, "STAGES", t.stages())
    return t


def _run(run_dir: Path, **kw):
    cfg = PipelineConfig(dataset="cifar10", smoke=True, **kw)
    return runner.run_pipeline(cfg, run_dir, argv=["--test"])


def test_second_run_skips_everything(tmp_path, toy):
    first = _run(tmp_path / "R")
    assert first.ran == ["prompts", "generate", "tune"]
    second = _run(tmp_path / "R")
    assert second.ran == [] and toy.calls == ["prompts", "generate", "tune"]
    cfg = json.loads((tmp_path / "R" / "config.json").read_text())
    assert cfg["config"]["dataset"] == "cifar10" and len(cfg["classnames"]) == 10 and cfg["argv"] == ["--test"]
    marker = read_marker(tmp_path / "R", "generate")
    assert marker is not None and marker.seconds >= 0 and set(marker.outputs) == {"b"}


def test_changed_setting_redoes_that_stage_and_the_ones_after(tmp_path, toy):
    _run(tmp_path / "R")
    toy.calls.clear()
    assert _run(tmp_path / "R", epochs=5).ran == ["tune"]
    toy.calls.clear()
    assert _run(tmp_path / "R", epochs=5, seed=1).ran == ["prompts", "generate", "tune"]


def test_execution_settings_do_not_invalidate(tmp_path, toy):
    _run(tmp_path / "R")
    assert _run(tmp_path / "R", device="cpu", gen_batch_size=2).ran == []


def test_damaged_output_is_redone(tmp_path, toy):
    _run(tmp_path / "R")
    b = tmp_path / "R" / "b"
    kept = (b / "0.txt").stat().st_mtime_ns
    (b / "2.txt").unlink()
    # A resumable stage finishes what is missing (its tool checks what is there); redone with the same
    # content, so what comes after is still valid.
    assert _run(tmp_path / "R").ran == ["generate"]
    assert (b / "0.txt").stat().st_mtime_ns == kept and (b / "2.txt").exists()
    # Any other stage is redone from scratch.
    (tmp_path / "R" / "c.json").write_text("edited by hand")
    assert _run(tmp_path / "R").ran == ["tune"]
    assert json.loads((tmp_path / "R" / "c.json").read_text()) == {"files": 3}
    (tmp_path / "R" / "a.json").write_text('{"seed": 99}')
    assert _run(tmp_path / "R").ran == ["prompts"]  # rewritten as before, so generate's input is unchanged


def test_output_put_there_by_hand_is_resumed_by_a_resumable_stage(tmp_path, toy):
    cfg = PipelineConfig(dataset="cifar10", smoke=True)
    runner.run_pipeline(cfg, tmp_path / "R", until="prompts")
    b = tmp_path / "R" / "b"
    b.mkdir()
    (b / "0.txt").write_text("made elsewhere")  # e.g. synth-generate under torchrun
    assert runner.run_pipeline(cfg, tmp_path / "R").ran == ["generate", "tune"]
    assert (b / "0.txt").read_text() == "made elsewhere"
    assert runner.run_pipeline(cfg, tmp_path / "R", force=["generate"]).ran == ["generate", "tune"]
    assert (b / "0.txt").read_text() != "made elsewhere"  # --redo starts from scratch


def test_interrupted_stage_leaves_no_marker_and_resumes_its_partial_output(tmp_path, toy):
    toy.fail = "generate"
    with pytest.raises(RuntimeError):
        _run(tmp_path / "R")
    assert read_marker(tmp_path / "R", "generate") is None
    assert sorted(p.name for p in (tmp_path / "R" / "b").iterdir()) == ["0.txt"]
    first_bytes = (tmp_path / "R" / "b" / "0.txt").stat().st_mtime_ns
    toy.fail = None
    assert _run(tmp_path / "R").ran == ["generate", "tune"]
    assert (tmp_path / "R" / "b" / "0.txt").stat().st_mtime_ns == first_bytes  # kept, not redone


def test_partial_output_of_another_config_is_removed(tmp_path, toy):
    toy.fail = "generate"
    with pytest.raises(RuntimeError):
        _run(tmp_path / "R")
    toy.fail = None
    _run(tmp_path / "R", seed=3)
    assert (tmp_path / "R" / "b" / "0.txt").read_text().startswith('{"seed": 3}')


def test_redo_and_until(tmp_path, toy):
    cfg = PipelineConfig(dataset="cifar10", smoke=True)
    assert runner.run_pipeline(cfg, tmp_path / "R", until="generate").ran == ["prompts", "generate"]
    assert runner.run_pipeline(cfg, tmp_path / "R").ran == ["tune"]
    assert runner.run_pipeline(cfg, tmp_path / "R", force=["generate"]).ran == ["generate", "tune"]
    with pytest.raises(PipelineError, match="unknown stage"):
        runner.run_pipeline(cfg, tmp_path / "R", force=["nope"])


def test_results_are_reported_only_when_tune_is_done_for_these_settings(tmp_path, toy):
    from synthdata.tools._pipeline import layout

    cfg = PipelineConfig(dataset="cifar10", smoke=True)
    assert runner.run_pipeline(cfg, tmp_path / "R").ran[-1] == "tune"
    (tmp_path / "R" / layout.RESULTS).write_text('{"method": "zero-shot", "top1": 0.5}\n')
    assert runner.run_pipeline(cfg, tmp_path / "R").results == [{"method": "zero-shot", "top1": 0.5}]
    other = PipelineConfig(dataset="cifar10", smoke=True, seed=7)  # stops before tune: the file is stale
    assert runner.run_pipeline(other, tmp_path / "R", until="generate").results == []


def test_refuses_a_foreign_directory_and_a_real_run_without_eval(tmp_path, toy):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    with pytest.raises(PipelineError, match="not a synth-pipeline run"):
        _run(foreign)
    with pytest.raises(PipelineError, match="--eval DIR"):
        runner.run_pipeline(PipelineConfig(dataset="cifar10"), tmp_path / "R2")


def test_a_second_process_on_the_same_run_is_refused(tmp_path, toy):
    import fcntl

    run_dir = tmp_path / "R"
    run_dir.mkdir()
    with open(run_dir / runner.LOCK_FILE, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        with pytest.raises(PipelineError, match="another synth-pipeline"):
            _run(run_dir)


def test_failure_before_any_output_leaves_no_run_dir(tmp_path, toy):
    toy.fail = "prompts"
    with pytest.raises(RuntimeError, match="no weights"):
        _run(tmp_path / "new" / "R")
    assert not (tmp_path / "new").exists()  # nor the parent it made
    empty = tmp_path / "E"
    empty.mkdir()
    with pytest.raises(RuntimeError, match="no weights"):
        _run(empty)
    assert empty.is_dir() and not any(empty.iterdir())


def test_failed_stage_of_a_run_with_output_keeps_its_attempt_record(tmp_path, toy):
    run_dir = tmp_path / "R"
    _run(run_dir)
    toy.fail = "prompts"
    with pytest.raises(RuntimeError, match="no weights"):
        runner.run_pipeline(PipelineConfig(dataset="cifar10", smoke=True), run_dir, force=["prompts"])
    attempt = json.loads((run_dir / "stages" / "prompts.attempt.json").read_text())
    assert {"config_hash", "inputs", "started"} <= set(attempt)
    assert read_marker(run_dir, "prompts") is None and (run_dir / "b").is_dir()
