"""Stage ``prompts``: class names → ``R/prompts.jsonl`` with :mod:`synthdata.prompts`: Language Enhancement
(the paper's zero-shot recipe), the dataset's CLIP templates, or the basic ``"<prefix> <class>"`` prompt (the
official few-shot recipe)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from synthdata.tools._pipeline import layout
from synthdata.tools._pipeline.config import PipelineError
from synthdata.tools._pipeline.context import RunContext, Stage
from synthdata.tools._pipeline.stages import STAGES_DIR

log = logging.getLogger("synth-pipeline")


def _inputs(ctx: RunContext) -> dict[str, Path]:
    return {"classes": Path(ctx.cfg.classes_file)} if ctx.cfg.classes_file else {}


def _templates(ctx: RunContext) -> list[str]:
    from synthdata.prompts import GENERIC_TEMPLATES, get_dataset

    return list(get_dataset(ctx.cfg.dataset).templates) if ctx.cfg.dataset else list(GENERIC_TEMPLATES)


def run(ctx: RunContext) -> dict[str, Any]:
    from synthdata.prompts import PromptsError, template_prompts, write_prompts

    cfg = ctx.cfg
    per_class = cfg.prompts_per_class
    try:
        if cfg.prompt_method in ("template", "basic"):
            # basic: the single prompt "<prefix> <class><suffix>" (the official few-shot recipe); template:
            # the dataset's CLIP templates in turn (an explicit --prefix makes it basic, as synth-prompts does).
            basic = cfg.prompt_method == "basic" or cfg.prefix is not None
            records = template_prompts(
                ctx.classnames,
                _templates(ctx),
                per_class,
                prefix=ctx.prefix if basic else None,
                suffix=ctx.suffix if basic else "",
            )
            info: dict[str, Any] = {"method": cfg.prompt_method}
        else:
            records, info = _le(ctx, per_class)
        n = write_prompts(ctx.path(layout.PROMPTS), records)
        _journal(ctx).unlink(missing_ok=True)  # the output is complete: nothing left to resume
    except PromptsError as exc:
        raise PipelineError(f"prompts: {exc}") from exc
    classes_with_prompts = len({r.class_index for r in records})
    if classes_with_prompts < len(ctx.classnames):
        raise PipelineError(
            f"prompts: only {classes_with_prompts} of {len(ctx.classnames)} classes got a prompt; "
            "try --prompt-method template"
        )
    return {**info, "prompts": n, "per_class": per_class, "prefix": ctx.prefix, "suffix": ctx.suffix}


def _journal(ctx: RunContext) -> Path:
    return ctx.path(STAGES_DIR) / ".prompts.le-journal.jsonl"


def _le(ctx: RunContext, per_class: int) -> tuple[list[Any], dict[str, Any]]:
    from synthdata.prompts import LanguageEnhancer, le_prompts

    cfg = ctx.cfg
    pcfg = cfg.stage_config("prompts", method="le", per_class=per_class)
    le_cfg = pcfg.le_config()
    if pcfg.smoke:
        enhancer = LanguageEnhancer.smoke(ctx.classnames, device="cpu")
    else:
        enhancer = LanguageEnhancer.from_pretrained(pcfg.le_model, device=ctx.device, option="--le-model")
    # The journal lives beside the markers, not in the stage's output (which a redo removes), so an
    # interrupted Language Enhancement resumes after its last finished block; it is keyed on the settings,
    # so one from other settings is ignored.
    journal = _journal(ctx)
    journal.parent.mkdir(parents=True, exist_ok=True)
    inputs = pcfg.le_inputs(ctx.classnames, cfg.dataset)  # None: the class names (paper: LE.py's labels)
    prefix, suffix = pcfg.domain(cfg.dataset, ctx.prefix, ctx.suffix)
    with ctx.bar(len(ctx.classnames) * per_class, "prompts: language enhancement", "sent") as bar:
        result = enhancer.generate_resumable(
            ctx.classnames, le_cfg, journal=journal, inputs=inputs, progress=bar.update
        )
    records = le_prompts(result, ctx.classnames, prefix, suffix, join=pcfg.join)
    short = {s.class_name: s.shortfall for s in result.stats if s.shortfall}
    if short:
        log.warning("prompts: %d classes are short of %d unique sentences; their prompts repeat in generation",
                    len(short), per_class)
    return records, {"method": "le", "model": enhancer.model_id, "shortfall": short}


STAGE = Stage("prompts", (layout.PROMPTS,), _inputs, run)
