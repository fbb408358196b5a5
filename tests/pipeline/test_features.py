"""synth-pipeline's run contract: results history appended, a rerun from its own config.json, every model file
checked before the first stage, generation on several local processes through torchrun."""

from __future__ import annotations

import json

import pytest

from synthdata.shards import ShardDataset, make_demo
from synthdata.tools._pipeline import runner
from synthdata.tools._pipeline.config import PipelineConfig
from synthdata.tools._pipeline.results import append_results, latest_results, read_results
from synthdata.tools.pipeline import main


def test_results_history_is_appended_and_the_latest_block_is_read(tmp_path) -> None:
    path = tmp_path / "results.jsonl"
    first = append_results(path, [{"method": "zero-shot", "top1": 0.1}, {"method": "classifier-tuning", "top1": 0.2}])
    second = append_results(path, [{"method": "zero-shot", "top1": 0.3}])
    assert [r["top1"] for r in read_results(path)] == [0.1, 0.2, 0.3]  # nothing lost
    assert [r["top1"] for r in latest_results(path)] == [0.3] and first < second
    with open(path, "ab") as fh:
        fh.write(b'{"method": "torn')  # a crash mid-write
    assert [r["top1"] for r in latest_results(path)] == [0.3]
    append_results(path, [{"method": "wise-ft", "top1": 0.4}])
    assert [r["top1"] for r in read_results(path)] == [0.1, 0.2, 0.3, 0.4]


def test_missing_weights_fail_before_the_first_stage(tmp_path, monkeypatch, capsys) -> None:
    from synthdata.diffusion import checkpoints

    def offline(url, dest, **kwargs):
        raise checkpoints.CheckpointError(f"{dest.name} is not cached and {url} cannot be reached")

    calls: list = []
    monkeypatch.setattr(runner, "run_stage", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(checkpoints, "download", offline)
    real = make_demo(tmp_path / "eval", classes=10, per_class=1, size=16, imagefolder=True)
    out = tmp_path / "R"
    argv = ["--dataset", "cifar10", "--eval", str(real), "--out", str(out), "--weights-cache", str(tmp_path / "c"),
            "--prompt-method", "template"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("synth-pipeline: error: generate:") and "base.pt" in err and "\n" not in err
    assert calls == [] and not out.exists()  # refused before any stage ran or anything was written


def test_each_model_is_checked_once_for_the_stages_still_to_run(tmp_path, monkeypatch) -> None:
    import synthdata.clip
    from synthdata.diffusion import checkpoints

    checked: list = []
    monkeypatch.setattr(synthdata.clip, "ensure_weights", lambda *a: checked.append(("clip", a[0])))
    monkeypatch.setattr(checkpoints, "resolve_checkpoint", lambda name, cache: checked.append(("glide", name)))
    cfg = PipelineConfig(dataset="cifar10", eval_dir=str(tmp_path), prompt_method="template").resolved()
    runner.check_weights(cfg, tmp_path / "new")
    assert checked == [("glide", "glide.base"), ("glide", "glide.upsample"), ("clip", "RN50")]
    checked.clear()
    for stage in ("prompts", "fewshot", "generate", "filter"):
        (tmp_path / "R" / "stages").mkdir(parents=True, exist_ok=True)
        marker = runner.StageMarker(stage, {}, "h", {}, {}, "", "", 0.0)
        runner.write_marker(tmp_path / "R", marker)
    runner.check_weights(cfg, tmp_path / "R")
    assert checked == [("clip", "RN50")]  # the tuner still needs the CLIP the filter used


@pytest.fixture
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as torchrun's ranks run (OMP_NUM_THREADS=1): float sums in the same order
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_rerun_from_config_json_and_generation_under_torchrun(tmp_path, capsys, one_thread) -> None:
    classes = tmp_path / "c.txt"
    classes.write_text("red fox\nsnow owl\n")
    one, two = tmp_path / "one", tmp_path / "two"
    common = ["--classes", str(classes), "--smoke", "--images-per-class", "4", "--shard-size", "2", "--gen-batch-size", "2",
              "--until", "generate", "--quiet"]
    assert main([*common, "--out", str(one)]) == 0
    assert main([*common, "--out", str(two), "--nproc-per-node", "2"]) == 0
    marker = json.loads((two / "stages" / "generate.json").read_text())
    assert marker["info"]["ranks"] == 2
    a, b = ShardDataset.open(one / "generated"), ShardDataset.open(two / "generated")
    assert len(a.shards) == 4  # 8 images in shards of 2: each rank had its share
    # one thread a process and batches of one shard, in both runs: the same images to the byte (another thread
    # count or batch size may round a float differently; the plan fixes the seeds, not the arithmetic)
    assert [(s.name, s.keys, s.sha256) for s in a.shards] == [(s.name, s.keys, s.sha256) for s in b.shards]
    capsys.readouterr()
    # the run's own config.json reruns it with the same settings: nothing to do
    assert main(["--config", str(one / "config.json"), "--out", str(one), "--until", "generate"]) == 0
    assert "prompts skipped, fewshot disabled, generate skipped" in capsys.readouterr().err
    options = json.loads((one / "config.json").read_text())["options"]
    assert PipelineConfig(**{k: v for k, v in options.items() if k != "recipe"}, recipe="default").resolved().size == 64
