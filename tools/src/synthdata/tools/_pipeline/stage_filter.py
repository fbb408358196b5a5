"""Stage ``filter``: ``R/generated`` → ``R/filtered`` (the kept shards) and ``R/filtered.report``
(``scores.jsonl``, ``report.json``, its PNGs) with :func:`synthdata.filter.filter_shards`: CLIP zero-shot
scoring over the class names and the paper's selection rule, keeping ``keep_per_class`` images a class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthdata.tools._pipeline import layout
from synthdata.tools._pipeline.config import PipelineError
from synthdata.tools._pipeline.context import RunContext, Stage


def _inputs(ctx: RunContext) -> dict[str, Path]:
    return {"generated": ctx.path(layout.GENERATED_DIR)}


def run(ctx: RunContext) -> dict[str, Any]:
    from synthdata.clip import WeightsUnavailableError
    from synthdata.filter import ClassListError, filter_shards
    from synthdata.shards import ShardError

    cfg = ctx.cfg
    fcfg = cfg.stage_config(
        "filter",
        device=ctx.device,
        precision="fp32",
        num_workers=0 if cfg.smoke else None,  # None: the filter's own choice for the device (4 on CUDA, else 1)
        progress=ctx.progress,
    )
    try:
        result = filter_shards(
            ctx.path(layout.GENERATED_DIR),
            ctx.path(layout.FILTER_DIR),
            ctx.classnames,
            ctx.texts.filter_templates if ctx.texts else ctx.clip_templates,
            fcfg,
            bundle=ctx.clip(),
            source_note={"classes_from": "synth-pipeline"},
            head_names=ctx.texts.filter_names if ctx.texts else None,
        )
    except (ShardError, ClassListError, WeightsUnavailableError, ValueError) as exc:
        raise PipelineError(f"filter: {exc}") from exc
    if result.kept == 0:
        raise PipelineError("filter: no image was kept; generate more images a class (--images-per-class)")
    return {
        "scored": result.scored,
        "kept": result.kept,
        "unreadable": result.unreadable,
        "shards": result.shards,
        "rule": fcfg.rule,
        "per_class": fcfg.per_class,
    }


# keep_partial: an interrupted filter run keeps its per-shard score checkpoints and rescores only the rest.
STAGE = Stage("filter", (layout.FILTER_DIR, layout.FILTER_REPORT_DIR), _inputs, run, keep_partial=True)
