"""synth-tune --recipe paper: the head text (--print-head-text), the official few-shot batches and schedule,
and the best-over-epochs top-1 reported beside the final epoch's, labelled as selected on the test set."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from synthdata.clip import DEFAULT_TEMPLATES
from synthdata.prompts import get_dataset, list_datasets
from synthdata.shards import demo_classes
from synthdata.shards.options import build_config
from synthdata.tools.tune import main
from synthdata.tune import TuneConfig, run_tuning
from synthdata.tune.config import RECIPES
from synthdata.tune.outputs import epoch_scores_record
from synthdata.tune.schedule import restarting_cosine_lr, restarting_cosine_scheduler
from synthdata.tune.train import train_head_on_features

CIFAR_FIRST_LAST = ("a photo of a {}.", "a photo of the big {}.")


def _head_text(capsys, *argv) -> dict:
    assert main([*argv, "--print-head-text"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    return json.loads(out[0])


@pytest.mark.parametrize("dataset", list_datasets())
@pytest.mark.parametrize("recipe", ["default", "paper"])
def test_print_head_text_for_every_dataset(capsys, dataset, recipe):
    text = _head_text(capsys, "--dataset", dataset, "--recipe", recipe)
    assert set(text) == {"class_names", "templates"}
    assert len(text["class_names"]) == get_dataset(dataset).num_classes
    assert text["templates"] and all(t.count("{}") == 1 for t in text["templates"])
    if recipe == "default":
        assert text["class_names"] == list(get_dataset(dataset).classnames)
        assert text["templates"] == list(get_dataset(dataset).templates)


def test_print_head_text_exact_strings(capsys):
    eurosat = _head_text(capsys, "--dataset", "eurosat", "--recipe", "paper")
    assert eurosat["templates"] == ["a centered satellite photo of {}."]
    assert eurosat["class_names"][:5] == [
        "Annual Crop Land", "Forest", "Herbaceous Vegetation Land", "Highway or Road", "Industrial Buildings"
    ]
    assert len(_head_text(capsys, "--dataset", "eurosat")["templates"]) == 3
    dtd = _head_text(capsys, "--dataset", "dtd", "--recipe", "paper")
    assert dtd["templates"] == ["{} texture."] and dtd["class_names"][0] == "banded"
    cars = _head_text(capsys, "--dataset", "cars", "--recipe", "paper")
    assert cars["class_names"][:2] == ["2000 AM General Hummer SUV", "2012 Acura RL Sedan"]
    assert len(cars["templates"]) == 8 and cars["templates"][3] == "i love my {}!"
    assert _head_text(capsys, "--dataset", "cars")["class_names"][0] == "AM General Hummer SUV 2000"
    sun = _head_text(capsys, "--dataset", "sun397", "--recipe", "paper")
    assert sun["templates"] == ["a photo of a {}.", "a photo of the {}."]
    index = list(get_dataset("sun397").classnames).index("control tower outdoor")
    assert sun["class_names"][index] == "outdoor control tower"
    for dataset in ("cifar10", "cifar100"):
        for recipe in ("default", "paper"):
            text = _head_text(capsys, "--dataset", dataset, "--recipe", recipe)
            assert len(text["templates"]) == 18 and (text["templates"][0], text["templates"][-1]) == CIFAR_FIRST_LAST
    assert _head_text(capsys, "--dataset", "cifar10", "--recipe", "paper")["class_names"][0] == "airplane"


def test_print_head_text_with_a_class_list_and_templates_file(capsys, tmp_path):
    names = tmp_path / "c.txt"
    names.write_text("red fox\ngrey wolf\n")
    templates = tmp_path / "t.txt"
    templates.write_text("a photo of a {}.\n")
    text = _head_text(capsys, "--classes", str(names), "--recipe", "paper", "--templates", str(templates))
    assert text == {"class_names": ["red fox", "grey wolf"], "templates": ["a photo of a {}."]}
    paper = _head_text(capsys, "--dataset", "eurosat", "--recipe", "paper", "--templates", str(templates))
    assert paper["templates"] == ["a photo of a {}."] and paper["class_names"][0] == "Annual Crop Land"


def test_without_print_head_text_eval_and_out_are_required(capsys):
    assert main(["--dataset", "eurosat"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--eval, --out" in err[0]


def test_the_paper_recipe_settings():
    paper, default = build_config(TuneConfig, RECIPES, "paper"), TuneConfig()
    assert (paper.warmup_epochs, paper.frozen_few_shot_batch, paper.eval_every_epoch) == (0.0, 128, True)
    assert (default.warmup_epochs, default.frozen_few_shot_batch, default.eval_every_epoch) == (1.0, None, False)
    assert (paper.batch_size, paper.real_batch_size, paper.epochs, paper.sl, paper.sl_temperature) == (512, 32, 30, 0.5, 2.0)
    assert paper.feature_batches(10_000, 160) == (128, 128, 20)  # few-shot: 128 + 128, schedule for 512
    assert paper.feature_batches(10_000, 0) == (512, 32, None)  # zero-shot: as the README runs it
    assert default.feature_batches(10_000, 160) == (512, 32, None)


def _official_lr(step_in_epoch: int, epoch: int, schedule_per_epoch: int, epochs: int, base: float) -> float:
    """finetune_fsl's cosine_lr(step = i + epoch * num_batches_syn), warmup 0."""
    position = step_in_epoch + epoch * schedule_per_epoch
    return 0.5 * (1 + math.cos(math.pi * position / (epochs * schedule_per_epoch))) * base


def test_restarting_cosine_is_the_official_few_shot_schedule():
    per_epoch, sched, epochs = 8, 2, 3  # 1000 images: 8 batches of 128 run, 2 of 512 planned
    for step in range(per_epoch * epochs):
        epoch, i = divmod(step, per_epoch)
        assert restarting_cosine_lr(step, per_epoch, sched, epochs, 0, 1e-3) == pytest.approx(
            _official_lr(i, epoch, sched, epochs, 1e-3)
        )
    lrs = [restarting_cosine_lr(s, per_epoch, sched, epochs, 0, 1.0) for s in range(per_epoch * epochs)]
    assert lrs[per_epoch] > lrs[per_epoch - 1]  # back up at an epoch start
    assert lrs[-1] > min(lrs)  # and rising again past the planned end
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1e-3)
    scheduler = restarting_cosine_scheduler(optimizer, per_epoch, sched, epochs, 0)
    seen = []
    for _ in range(per_epoch * epochs):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([1e-3 * x for x in lrs])


def test_few_shot_batches_and_schedule_under_paper():
    torch.manual_seed(0)
    n_syn, n_real, dim, classes = 300, 40, 8, 4
    syn = (torch.randn(n_syn, dim), torch.randint(0, classes, (n_syn,)), torch.randn(n_syn, classes))
    real = (torch.randn(n_real, dim), torch.randint(0, classes, (n_real,)))
    sizes: list[int] = []

    class Head(torch.nn.Linear):
        def forward(self, x):
            sizes.append(len(x))
            return super().forward(x)

    cfg = build_config(TuneConfig, RECIPES, "paper", epochs=3, shots=10, lr=1e-3)
    rows = train_head_on_features(Head(dim, classes), cfg, syn=syn, real=real)
    assert [r["step"] for r in rows] == [3, 6, 9]  # ceil(300 / 128) steps an epoch, not ceil(300 / 512)
    assert sizes[:6] == [128, 40, 128, 40, 44, 40]  # synthetic then real, each step
    # each row's lr is its epoch's last step: position 2 + epoch * ceil(300 / 512) of a 3-step schedule
    for epoch, row in enumerate(rows):
        assert row["lr"] == pytest.approx(_official_lr(2, epoch, 1, 3, 1e-3))
    sizes.clear()
    rows = train_head_on_features(Head(dim, classes), TuneConfig(epochs=3, shots=10, lr=1e-3), syn=syn, real=real)
    assert [r["step"] for r in rows] == [1, 2, 3] and sizes[:2] == [300, 32]  # the default: 512 + 32


MODEL = {"model": "synthdata-tiny-vit", "pretrained": "none", "epochs": 4, "batch_size": 16, "lr": 0.2,
         "wise_alphas": (0.5,), "workers": 0}


def _run(demo, out, **overrides):
    return run_tuning(
        TuneConfig(**{**MODEL, **overrides}),
        classnames=demo_classes(4),
        templates=DEFAULT_TEMPLATES[:2],
        eval_data=demo["eval"],
        out=out,
        train=[demo["train"]],
        cache_dir=demo["cache"],
    )


def test_final_and_best_epoch_top1_are_both_reported_and_labelled(demo, tmp_path):
    record = _run(demo, tmp_path / "every", eval_every_epoch=True)
    scores = record["epoch_top1"]
    assert len(scores) == 4 and all(0 <= s <= 1 for s in scores)
    best = record["best_epoch_top1"]
    assert best["selected_on"] == "test set" and best["epochs_scored"] == 4
    assert best["top1"] == max(scores) and scores[best["epoch"] - 1] == max(scores)
    assert best["epoch"] == 1 + scores.index(max(scores))  # the first of equal bests, as `val_acc > best_acc`
    assert record["top1"] == scores[-1]  # the final epoch's top-1 is the last epoch's score
    log = [json.loads(x) for x in (tmp_path / "every" / "train_log.jsonl").read_text().splitlines()]
    assert [r["test_top1"] for r in log] == pytest.approx(scores, abs=1e-6)
    # scoring every epoch changes nothing about training (and not the run id)
    plain = _run(demo, tmp_path / "plain")
    assert "best_epoch_top1" not in plain and "epoch_top1" not in plain
    assert plain["top1"] == record["top1"] and plain["run_id"] == record["run_id"]
    a, b = load_file(tmp_path / "every" / "head.safetensors"), load_file(tmp_path / "plain" / "head.safetensors")
    assert torch.equal(a["weight"], b["weight"])


def test_best_epoch_record_ties_and_partial_logs():
    rows = [{"epoch": 1, "test_top1": 0.5}, {"epoch": 2, "test_top1": 0.7}, {"epoch": 3, "test_top1": 0.7}]
    rec = epoch_scores_record(rows)
    assert rec["best_epoch_top1"]["epoch"] == 2 and rec["epoch_top1"] == [0.5, 0.7, 0.7]
    resumed = [{"epoch": 1}, {"epoch": 2, "test_top1": 0.6}]
    rec = epoch_scores_record(resumed)
    assert rec["epoch_top1"] == [None, 0.6] and rec["best_epoch_top1"]["epochs_scored"] == 1
    assert epoch_scores_record([{"epoch": 1}]) == {}


def test_cli_prints_final_and_best_epoch(demo, tmp_path, capsys):
    argv = ["--in", str(demo["train"]), "--eval", str(demo["eval"]), "--classes-from-shards", "--smoke",
            "--epochs", "2", "--batch-size", "32", "--wise-alphas", "0.5", "--out", str(tmp_path / "o"),
            "--eval-every-epoch"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "final epoch top-1" in out and "selected on the test set" in out


def test_end_to_end_fine_tuning_scores_every_epoch_with_the_tuned_encoder(demo, tmp_path):
    record = _run(demo, tmp_path / "ft", finetune=True, epochs=2, batch_size=32, lr=1e-3, eval_every_epoch=True)
    assert len(record["epoch_top1"]) == 2 and record["best_epoch_top1"]["selected_on"] == "test set"
    assert record["epoch_top1"][-1] == pytest.approx(record["top1"], abs=1e-6)  # the encoder as it ended
