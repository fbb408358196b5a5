"""run_tuning and synth-tune end to end on demo data with a tiny random CLIP: learning, cache, resume, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from synthdata.clip import DEFAULT_TEMPLATES, load_clip
from synthdata.shards import demo_classes
from synthdata.tools.tune import build_command, main
from synthdata.tune import FeatureCache, TuneConfig, encode_images, load_head, load_image_set, run_tuning
from synthdata.tune.checkpoint import ResumeError

MODEL = "synthdata-tiny-vit"  # random ViT features are spread enough for a head to learn in a few steps
CLASSES = demo_classes(4)
# Small data needs more, smaller steps than the paper's 512-image batches (see docs/tune.md).
FAST = {
    "model": MODEL,
    "pretrained": "none",
    "epochs": 5,
    "batch_size": 16,
    "lr": 0.2,
    "wise_alphas": (0.5,),
    "workers": 0,
}


def _run(demo, out, resume=True, cache_dir=None, bundle=None, **overrides):
    """One run; features are cached in a directory shared by the tests (``demo["cache"]``) unless given."""
    cfg = TuneConfig(**{**FAST, **overrides})
    return run_tuning(
        cfg,
        classnames=CLASSES,
        templates=DEFAULT_TEMPLATES[:2],
        eval_data=demo["eval"],
        out=out,
        train=[demo["train"]],
        few_shot=demo["real"] if cfg.shots else None,
        resume=resume,
        cache_dir=cache_dir if cache_dir is not None else demo["cache"],
        bundle=bundle,
    )


def test_tuned_head_beats_zero_shot_on_held_out_data(demo, tmp_path):
    record = _run(demo, tmp_path / "o", cache_dir=tmp_path / "cache")
    assert record["zeroshot_top1"] == pytest.approx(0.25)  # a random text tower: one class for everything
    assert record["top1"] >= record["zeroshot_top1"] + 0.3, record
    assert set(record["wise_ft"]) == {"0.0", "0.5", "1.0"}
    assert record["wise_ft"]["0.0"] == record["zeroshot_top1"] and record["wise_ft"]["1.0"] == record["top1"]
    assert record["steps"] == 5 * 4 and record["feature_cache"] == {"eval": "miss", "train": "miss"}
    out = tmp_path / "o"
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["top1"] == record["top1"]
    assert len((out / "train_log.jsonl").read_text().splitlines()) == 5
    head, meta = load_head(out / "head.safetensors")
    assert head.num_classes == 4 and json.loads(meta["classnames"]) == CLASSES and meta["kind"] == "tuned"
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "config.json").read_text())["config"]["batch_size"] == 16


def test_feature_cache_is_reused_and_keyed_on_the_weights(demo, tmp_path):
    out, cache = tmp_path / "o", tmp_path / "o" / "feature_cache"
    first = _run(demo, out, cache_dir=cache)
    again = _run(demo, out, resume=False, cache_dir=cache)
    assert again["feature_cache"] == {"eval": "hit", "train": "hit"} and again["top1"] == first["top1"]
    assert len((out / "results.jsonl").read_text().splitlines()) == 2
    entries = sorted(cache.glob("*.safetensors"))
    assert len(entries) == 2
    for entry in entries:
        entry.write_bytes(b"not a safetensors file")  # a corrupt entry is recomputed, never trusted
    third = _run(demo, out, resume=False, cache_dir=cache)
    assert third["feature_cache"] == {"eval": "miss", "train": "miss"} and third["top1"] == first["top1"]
    # Other random weights (another seed) or another subset give another key.
    train = load_image_set(demo["train"], 4)
    key = FeatureCache(load_clip(MODEL, "none", seed=0), cache).key(train)[0]
    assert key == entries[0].stem or key == entries[1].stem
    assert FeatureCache(load_clip(MODEL, "none", seed=1), cache).key(train)[0] != key
    assert FeatureCache(load_clip(MODEL, "none", seed=0), cache).key(train, [0, 1])[0] != key


_KILL_SCRIPT = """
import os, signal, sys
from synthdata.clip import DEFAULT_TEMPLATES
from synthdata.shards import demo_classes
from synthdata.tune import TuneConfig, run_tuning

def die(row):
    if row["epoch"] == 2:
        os.kill(os.getpid(), signal.SIGKILL)

cfg = TuneConfig(**{fast})
run_tuning(cfg, classnames=demo_classes(4), templates=DEFAULT_TEMPLATES[:2], eval_data=sys.argv[1],
           out=sys.argv[3], train=[sys.argv[2]], few_shot=sys.argv[4], on_epoch=die, cache_dir=sys.argv[5])
"""


def test_resume_after_sigkill_gives_the_same_weights(demo, tmp_path):
    """Few-shot mixing (real batches cycle independently of epochs) killed after epoch 2 of 5, then rerun."""
    overrides = {"shots": 3, "real_batch_size": 4}
    reference = _run(demo, tmp_path / "ref", **overrides)
    killed = tmp_path / "killed"
    script = textwrap.dedent(_KILL_SCRIPT).replace("{fast}", repr({**FAST, **overrides}))
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            *map(str, (demo["eval"], demo["train"], killed, demo["real"], demo["cache"])),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert torch.load(killed / "checkpoint.pt", weights_only=True)["epoch"] == 2
    assert not (killed / "results.jsonl").exists()
    resumed = _run(demo, killed, **overrides)
    assert resumed["resumed_from_epoch"] == 2 and reference["resumed_from_epoch"] == 0
    a, b = load_file(tmp_path / "ref" / "head.safetensors"), load_file(killed / "head.safetensors")
    assert torch.equal(a["weight"], b["weight"]) and torch.equal(a["bias"], b["bias"])
    assert resumed["top1"] == reference["top1"] and resumed["setting"] == "few-shot"
    log = [json.loads(x) for x in (killed / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3, 4, 5]
    # A finished run re-run with other training settings refuses to mix checkpoints.
    with pytest.raises(ResumeError, match="other settings"):
        _run(demo, killed, **{**overrides, "lr": 0.1})


def test_end_to_end_finetuning_runs_and_saves_the_encoder(demo, tmp_path):
    bundle = load_clip(MODEL, "none")
    before = {k: v.clone() for k, v in bundle.model.visual.state_dict().items()}
    record = _run(demo, tmp_path / "o", bundle=bundle, finetune=True, epochs=1, batch_size=32, lr=1e-3)
    assert record["mode"] == "finetune" and record["steps"] == 2
    assert set(record["wise_ft"]) == {"0.0", "0.5", "1.0"}
    enc = load_file(tmp_path / "o" / "encoder.safetensors")
    after = bundle.model.visual.state_dict()
    assert enc.keys() == before.keys()
    assert all(
        torch.equal(before[k], after[k]) for k in before
    )  # the caller's bundle is handed back as it was
    assert any(not torch.equal(before[k], enc[k]) for k in before)  # and the saved encoder was trained


def test_cli_writes_results_and_fails_in_one_line(demo, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["--in", str(demo["train"]), "--eval", str(demo["eval"]), "--classes-from-shards"]
    argv += [
        "--clip-model",
        MODEL,
        "--clip-pretrained",
        "none",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--out",
        str(out),
    ]
    assert main([*argv, "--wise-alphas", "0.5", "--sl", "0"]) == 0
    record = json.loads((out / "results.jsonl").read_text().splitlines()[-1])
    assert {"zeroshot_top1", "top1", "wise_ft", "per_class_accuracy"} <= record.keys()
    assert record["config"]["sl"] == 0.0 and record["classes"] == CLASSES
    assert "tuned top-1" in capsys.readouterr().out
    bad = [*argv[:3], str(tmp_path / "nope"), *argv[4:]]
    assert main(bad) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "synth-tune: error:" in err[0] and "nope" in err[0]
    assert main([*argv, "--few-shot", str(demo["real"])]) == 2
    assert "--shots" in capsys.readouterr().err


def test_cli_class_sources(demo, tmp_path, capsys):
    names = tmp_path / "classes.txt"
    names.write_text("\n".join(CLASSES) + "\n")
    templates = tmp_path / "templates.txt"
    templates.write_text("# comment\na photo of a {}.\n")
    out = tmp_path / "cli"
    argv = [
        "--in",
        str(demo["train"]),
        "--eval",
        str(demo["eval"]),
        "--smoke",
    ]
    argv += ["--epochs", "1", "--batch-size", "64", "--out", str(out), "--wise-alphas", "0.5"]
    assert main([*argv, "--classes", str(names), "--templates", str(templates)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["templates"] == ["a photo of a {}."]
    assert (config["config"]["model"], config["config"]["pretrained"]) == (MODEL, "none")
    # a flag given beside --smoke wins over the recipe (the smoke recipe's random weights stay)
    parsed = build_command().parse([*argv, "--classes", str(names), "--clip-model", "RN50"])
    assert (parsed.model, parsed.pretrained) == ("RN50", "none")
    assert main([*argv, "--dataset", "no-such-dataset"]) == 2
    assert "unknown dataset" in capsys.readouterr().err
    templates.write_text("no placeholder\n")
    assert main([*argv, "--classes", str(names), "--templates", str(templates)]) == 2
    assert "'{}'" in capsys.readouterr().err


def test_parallel_decoding_gives_the_same_features_in_index_order(demo):
    bundle = load_clip(MODEL, "none")
    for source, subset in ((demo["train"], [0, 5, 17, 63]), (demo["eval"], None)):
        image_set = load_image_set(source, 4)
        f0, y0 = encode_images(bundle, image_set, subset, batch_size=8, workers=0)
        f2, y2 = encode_images(bundle, image_set, subset, batch_size=8, workers=2)
        assert torch.allclose(f0, f2, atol=1e-6) and torch.equal(y0, y2)
        expected = image_set.labels if subset is None else image_set.labels[subset]
        assert y0.tolist() == expected.tolist()


def test_few_shot_only_from_shards(demo, tmp_path):
    """No synthetic data: k real shots a class drawn from shards; an epoch is one pass over them."""
    cfg = TuneConfig(**{**FAST, "shots": 2, "real_batch_size": 4, "sl": 0.0})
    record = run_tuning(
        cfg,
        classnames=CLASSES,
        templates=DEFAULT_TEMPLATES[:2],
        eval_data=demo["eval"],
        out=tmp_path / "o",
        few_shot=demo["train"],
        cache_dir=demo["cache"],
    )
    assert record["setting"] == "few-shot" and record["steps"] == 5 * 2
    assert record["data"]["train"] is None and record["data"]["few_shot"]["samples"] == 8
    assert record["data"]["few_shot"]["kind"] == "shards" and record["feature_cache"]["real"] in (
        "hit",
        "miss",
    )
