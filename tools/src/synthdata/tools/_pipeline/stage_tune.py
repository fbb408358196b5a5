"""Stage ``tune``: Classifier Tuning of CLIP on ``R/filtered`` (plus ``--shots`` real images a class from
``--few-shot``) with :func:`synthdata.tune.run_tuning`, evaluated on ``--eval`` (or the smoke stand-in).
Writes ``R/tune/`` (heads, ``train_log.jsonl``, ``confusion.png``, the per-epoch checkpoint) and ``R/results.jsonl``: one line per
classifier (zero-shot CLIP, the tuned head, the best WiSE-FT mix)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthdata.tools._pipeline import layout
from synthdata.tools._pipeline.config import PipelineError
from synthdata.tools._pipeline.context import RunContext, Stage
from synthdata.tools._pipeline.results import append_results

RESULT_SCHEMA = "synthdata.pipeline-result/1"


def _eval_dir(ctx: RunContext) -> Path:
    return Path(ctx.cfg.eval_dir) if ctx.cfg.eval_dir else ctx.path(layout.EVAL_DIR)


def _inputs(ctx: RunContext) -> dict[str, Path]:
    deps = {"filtered": ctx.path(layout.FILTER_DIR), "eval": _eval_dir(ctx)}
    if ctx.cfg.few_shot:
        deps["few_shot"] = ctx.path(layout.FEW_SHOT_DIR)
    return deps


def result_rows(ctx: RunContext, record: dict[str, Any], *, stand_in: bool) -> list[dict[str, Any]]:
    """The pipeline's results lines from a :func:`synthdata.tune.run_tuning` record."""
    cfg = ctx.cfg
    data = record.get("data") or {}
    common = {
        "schema": RESULT_SCHEMA,
        "dataset": cfg.name,
        "setting": record.get("setting"),
        "shots": cfg.shots,
        "model": record.get("model"),
        "pretrained": record.get("pretrained"),
        "smoke": cfg.smoke,
        "stand_in_test_set": stand_in,
        "images_per_class": cfg.images_per_class,
        "kept_per_class": cfg.keep_per_class,
        "train_images": (data.get("train") or {}).get("samples"),
        "test_images": (data.get("eval") or {}).get("samples"),
        "finished": record.get("finished"),
    }
    wise = record.get("wise_ft_best") or {}
    return [
        {**common, "method": "zero-shot", "top1": record.get("zeroshot_top1"),
         "mean_per_class": _mean(record.get("zeroshot_per_class_accuracy")),
         "per_class": record.get("zeroshot_per_class_accuracy")},
        {**common, "method": "classifier-tuning", "top1": record.get("top1"),
         "mean_per_class": record.get("mean_per_class"), "per_class": record.get("per_class_accuracy"),
         "epochs": cfg.epochs, "steps": record.get("steps"), "final_train_loss": record.get("final_train_loss")},
        {**common, "method": "wise-ft", "alpha": wise.get("alpha"), "top1": wise.get("top1"),
         "mean_per_class": None, "per_class": None},
    ]


def _mean(values: Any) -> float | None:
    vals = [v for v in values or [] if v is not None]
    return round(sum(vals) / len(vals), 6) if vals else None


def run(ctx: RunContext) -> dict[str, Any]:
    from synthdata.clip import WeightsUnavailableError
    from synthdata.shards import ShardError
    from synthdata.tune import DataError, run_tuning

    cfg = ctx.cfg
    try:
        # Decoding processes: none for the few smoke images (starting them costs more than they save).
        workers = 0 if cfg.smoke else (4 if ctx.device.startswith("cuda") else 1)
        tcfg = cfg.stage_config("tune", device=ctx.device, workers=workers)
        with ctx.bar(tcfg.epochs, "tune: epochs", "epoch") as bar:
            record = _run(ctx, tcfg, run_tuning, on_epoch=lambda row: bar.update(1))
    except (DataError, ShardError, ValueError, FileNotFoundError, WeightsUnavailableError) as exc:
        raise PipelineError(f"tune: {exc}") from exc
    rows = result_rows(ctx, record, stand_in=cfg.eval_dir is None)
    append_results(ctx.path(layout.RESULTS), rows)
    return {
        "zeroshot_top1": record.get("zeroshot_top1"),
        "top1": record.get("top1"),
        "wise_ft_best": record.get("wise_ft_best"),
        "steps": record.get("steps"),
        "head": f"{layout.TUNE_DIR}/head.safetensors",
    }


def _run(ctx: RunContext, tcfg: Any, run_tuning: Any, **kwargs: Any) -> dict[str, Any]:
    return run_tuning(
        tcfg,
        classnames=ctx.texts.tune_names if ctx.texts else ctx.classnames,
        templates=ctx.texts.tune_templates if ctx.texts else ctx.clip_templates,
        class_aliases=ctx.texts.class_aliases if ctx.texts else None,
        eval_data=_eval_dir(ctx),
        out=ctx.path(layout.TUNE_DIR),
        train=[ctx.path(layout.FILTER_DIR)],
        few_shot=ctx.path(layout.FEW_SHOT_DIR) if ctx.cfg.few_shot else None,
        bundle=ctx.clip(),
        **kwargs,
    )


# R/results.jsonl is a history the stage appends to, not an output it replaces (a redo keeps it).
STAGE = Stage("tune", (layout.TUNE_DIR,), _inputs, run, keep_partial=True)
