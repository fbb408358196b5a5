"""Stage ``generate``: ``R/prompts.jsonl`` → ``R/generated`` (shards + ``dataset.json``) with the generation
runner of :mod:`synthdata.diffusion.runner` (GLIDE; Real Guidance from ``R/few_shot`` in the few-shot setting).
The runner plans the shards up front and skips complete ones, so an interrupted stage resumes where it
stopped (the stage keeps its partial output when the settings are unchanged)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthdata.tools._pipeline import layout
from synthdata.tools._pipeline.config import PipelineError
from synthdata.tools._pipeline.context import RunContext, Stage


def _inputs(ctx: RunContext) -> dict[str, Path]:
    deps = {"prompts": ctx.path(layout.PROMPTS)}
    if ctx.cfg.few_shot:
        deps["few_shot"] = ctx.path(layout.FEW_SHOT_DIR)
    return deps


def run(ctx: RunContext) -> dict[str, Any]:
    from synthdata.diffusion.checkpoints import CheckpointError
    from synthdata.diffusion.runner import GenerateConfig, GenerateError, run_generation
    from synthdata.prompts import PromptsError, read_prompts
    from synthdata.shards import ShardError, WorkSplit

    cfg = ctx.cfg
    kwargs: dict[str, Any] = {}
    if cfg.gen_batch_size is not None:
        kwargs["batch_size"] = cfg.gen_batch_size
    gcfg = GenerateConfig(
        out=str(ctx.path(layout.GENERATED_DIR)),
        images_per_prompt=int(cfg.images_per_prompt or 1),
        size=int(cfg.size or 256),
        guidance=cfg.guidance,
        base_respacing=cfg.base_respacing,
        up_respacing=cfg.up_respacing,
        upsample_temp=cfg.upsample_temp,
        image_format=cfg.image_format,
        seed=cfg.seed,
        name=cfg.name,
        smoke=cfg.smoke,
        real_guidance=str(ctx.path(layout.FEW_SHOT_DIR)) if cfg.few_shot else None,
        shots=cfg.shots if cfg.few_shot else None,
        device=ctx.device,
        **kwargs,
    )
    try:
        prompts = read_prompts(ctx.path(layout.PROMPTS))
        # The pipeline is one process: it takes every shard, whatever RANK/WORLD_SIZE say.
        summary = run_generation(
            gcfg,
            prompts,
            classes=ctx.classnames,
            split=WorkSplit(0, 1, "synth-pipeline"),
            progress=False,
            prompts_source=str(ctx.path(layout.PROMPTS)),
        )
    except (GenerateError, PromptsError, ShardError, CheckpointError) as exc:
        raise PipelineError(f"generate: {exc}") from exc
    if not summary.dataset_complete:
        raise PipelineError(f"generate: {ctx.path(layout.GENERATED_DIR)} is incomplete; rerun to resume")
    return {
        "images": summary.images,
        "images_resumed": summary.images_resumed,
        "shards": summary.shards_written + summary.shards_resumed,
        "images_per_second": round(summary.images_per_second, 4),
        "base_respacing": gcfg.base_respacing,
        "size": gcfg.size,
    }


STAGE = Stage("generate", (layout.GENERATED_DIR,), _inputs, run, keep_partial=True)
