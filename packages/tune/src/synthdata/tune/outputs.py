"""The files of a tuning run's output directory, and the JSON that describes the run (``config.json``'s
data summary, the record appended to ``results.jsonl``). See ``docs/tune.md``, "Outputs"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from synthdata.tune.config import TuneConfig
from synthdata.tune.evaluate import Evaluation
from synthdata.tune.inputs import Inputs

RESULT_SCHEMA = "synthdata.tune-result/1"
RESULTS_FILE = "results.jsonl"
CONFIG_FILE = "config.json"
TRAIN_LOG_FILE = "train_log.jsonl"
HEAD_FILE = "head.safetensors"
ZEROSHOT_HEAD_FILE = "zeroshot_head.safetensors"
ENCODER_FILE = "encoder.safetensors"
CONFUSION_FILE = "confusion.png"
CHECKPOINT_FILE = "checkpoint.pt"
BATCHNORM_FILE = "batchnorm.safetensors"


def rounded(x: float | None, nd: int = 6) -> float | None:
    """``x`` rounded to ``nd`` decimals as a float (None stays None): how the record stores metrics."""
    return None if x is None else round(float(x), nd)


def output_files(*, finetune: bool, batchnorm: bool) -> dict[str, str]:
    """The ``files`` entry of the record: what a run wrote, by role."""
    files = {
        "head": HEAD_FILE,
        "zeroshot_head": ZEROSHOT_HEAD_FILE,
        "confusion": CONFUSION_FILE,
        "config": CONFIG_FILE,
        "train_log": TRAIN_LOG_FILE,
        "checkpoint": CHECKPOINT_FILE,
    }
    if finetune:
        files["encoder"] = ENCODER_FILE
    if batchnorm:
        files["batchnorm"] = BATCHNORM_FILE
    return files


def data_summary(cfg: TuneConfig, inputs: Inputs) -> dict[str, Any]:
    """Sources, sample counts and fingerprints of the training, few-shot and test sets."""
    syn_set, real_set, eval_set = inputs.syn_set, inputs.real_set, inputs.eval_set
    train = None
    if syn_set is not None:
        train = {
            "sources": [str(p) for p in syn_set.roots],
            "samples": len(syn_set),
            "class_counts": syn_set.class_counts(inputs.num_classes),
            "fingerprint": syn_set.fingerprint(),
        }
    few_shot = None
    if real_set is not None:
        assert inputs.real_idx is not None
        few_shot = {
            "source": str(real_set.roots[0]),
            "kind": real_set.kind,
            "shots": cfg.shots,
            "seed": cfg.seed,
            "samples": len(inputs.real_idx),
            "available": len(real_set),
            "fingerprint": real_set.fingerprint(),
        }
    return {
        "train": train,
        "few_shot": few_shot,
        "eval": {
            "source": str(eval_set.roots[0]),
            "kind": eval_set.kind,
            "samples": len(eval_set),
            "fingerprint": eval_set.fingerprint(),
        },
    }


def config_json(cfg: TuneConfig, inputs: Inputs, data: dict[str, Any]) -> dict[str, Any]:
    """``config.json``: the configuration, class names, templates, data summary and cache directory."""
    return {
        "config": cfg.to_json(),
        "classnames": inputs.classnames,
        "templates": inputs.templates,
        "data": data,
        "cache_dir": str(inputs.cache_root) if inputs.cache_root else None,
    }


def scores_record(
    zero_shot: Evaluation, tuned: Evaluation, wise: dict[str, float], best_alpha: str
) -> dict[str, Any]:
    """The record's metrics: zero-shot and tuned top-1 and per-class accuracy, confusion, WiSE-FT sweep."""
    return {
        "zeroshot_top1": rounded(zero_shot.top1),
        "top1": rounded(tuned.top1),
        "mean_per_class": rounded(tuned.mean_per_class),
        "per_class_accuracy": [rounded(v) for v in tuned.per_class],
        "zeroshot_per_class_accuracy": [rounded(v) for v in zero_shot.per_class],
        "confusion": tuned.confusion.tolist(),
        "wise_ft": {a: rounded(v) for a, v in wise.items()},
        "wise_ft_best": {"alpha": float(best_alpha), "top1": rounded(wise[best_alpha])},
    }


def training_record(train_log: Sequence[dict], *, resumed_from: int, run_id: str) -> dict[str, Any]:
    """The record's training summary: optimiser steps, the epoch resumed from, the run's identity (see
    :class:`~synthdata.tune.checkpoint.Checkpoint`), the last epoch's loss."""
    return {
        "steps": train_log[-1]["step"] if train_log else 0,
        "resumed_from_epoch": resumed_from,
        "run_id": run_id,
        "final_train_loss": rounded(train_log[-1]["loss"]) if train_log else None,
    }


def epoch_scores_record(train_log: Sequence[dict]) -> dict[str, Any]:
    """With ``eval_every_epoch``: every epoch's test top-1 and the best of them, labelled as chosen on the
    test set (the number the official code reports; ``top1`` stays the last epoch's); else nothing.

    Ties go to the earliest epoch, as the official ``if val_acc > best_acc``. Epochs trained before the
    setting was turned on (a resumed run) have no score and are left out of the best (``epochs_scored``).
    """
    scored = [(r["epoch"], r["test_top1"]) for r in train_log if r.get("test_top1") is not None]
    if not scored:
        return {}
    epoch, top1 = max(scored, key=lambda er: (er[1], -er[0]))
    return {
        "epoch_top1": [rounded(r.get("test_top1")) for r in train_log],
        "best_epoch_top1": {
            "top1": rounded(top1),
            "epoch": epoch,
            "selected_on": "test set",
            "epochs_scored": len(scored),
            "note": "the best epoch picked by its test accuracy, as the official code reports; top1 is the last epoch's",
        },
    }
