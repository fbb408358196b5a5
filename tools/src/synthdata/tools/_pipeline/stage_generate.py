"""Stage ``generate``: ``R/prompts.jsonl`` → ``R/generated`` (shards + ``dataset.json``) with the generation
runner of :mod:`synthdata.diffusion.runner` (GLIDE; Real Guidance from ``R/few_shot`` in the few-shot setting).
The runner plans the shards up front and skips complete ones, so an interrupted stage resumes where it
stopped (the stage keeps its partial output when the settings are unchanged)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from synthdata.tools._pipeline import layout
from synthdata.tools._pipeline.config import PipelineError
from synthdata.tools._pipeline.context import RunContext, Stage
from synthdata.tools._pipeline.stages import STAGES_DIR


def _inputs(ctx: RunContext) -> dict[str, Path]:
    deps = {"prompts": ctx.path(layout.PROMPTS)}
    if ctx.cfg.few_shot:
        deps["few_shot"] = ctx.path(layout.FEW_SHOT_DIR)
    return deps


def _generate_config(ctx: RunContext, *, device: str | None) -> Any:
    cfg = ctx.cfg
    return cfg.stage_config(
        "generate",
        out=str(ctx.path(layout.GENERATED_DIR)),
        name=cfg.name,
        real_guidance=str(ctx.path(layout.FEW_SHOT_DIR)) if cfg.few_shot else None,
        shots=cfg.shots if cfg.few_shot else None,
        device=device,
    ).resolved()


def run(ctx: RunContext) -> dict[str, Any]:
    from synthdata.diffusion.checkpoints import CheckpointError
    from synthdata.diffusion.runner import GenerateError, run_generation
    from synthdata.prompts import PromptsError, read_prompts
    from synthdata.shards import ShardError, WorkSplit

    if ctx.cfg.nproc_per_node > 1:
        return _run_torchrun(ctx)
    gcfg = _generate_config(ctx, device=ctx.device)
    try:
        prompts = read_prompts(ctx.path(layout.PROMPTS))
        # The pipeline is one process: it takes every shard, whatever RANK/WORLD_SIZE say.
        summary = run_generation(
            gcfg,
            prompts,
            classes=ctx.classnames,
            split=WorkSplit(0, 1, "synth-pipeline"),
            progress=ctx.progress,
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


def torchrun_command(ctx: RunContext, options: Path, classes: Path) -> list[str]:
    """``torchrun`` over ``synth-generate`` with the stage's settings (an argument list: no shell)."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
        str(ctx.cfg.nproc_per_node), "-m", "synthdata.tools.generate", "--config", str(options),
        "--prompts", str(ctx.path(layout.PROMPTS)), "--classes", str(classes),
        *([] if ctx.progress else ["--quiet"]),
    ]


def _run_torchrun(ctx: RunContext) -> dict[str, Any]:
    """Generation on ``--nproc-per-node`` local GPUs: synth-generate under torchrun, each rank taking its
    shards; the settings travel as a ``--config`` file, so the ranks run exactly what one process would."""
    import dataclasses
    import json
    import subprocess

    from synthdata.diffusion.runner import SUMMARY_JSON
    from synthdata.shards.atomic import atomic_write_json
    from synthdata.tools.generate import build_command

    gcfg = _generate_config(ctx, device=None)  # each rank takes cuda:LOCAL_RANK
    exposed = {b.field for b in build_command().bound.values() if b.field is not None}
    options = {f.name: getattr(gcfg, f.name) for f in dataclasses.fields(gcfg) if f.name in exposed}
    options["recipe"] = "smoke" if gcfg.smoke else "default"
    hidden = {f.name for f in dataclasses.fields(gcfg) if f.name not in exposed and f.metadata.get("cli", True)}
    differs = sorted(n for n in hidden if getattr(gcfg, n) != getattr(type(gcfg)(out=""), n))
    if differs:  # a setting synth-generate has no flag for cannot travel: refuse rather than drop it
        raise PipelineError(f"generate: --nproc-per-node cannot pass {', '.join(differs)} to synth-generate")
    stages = ctx.path(STAGES_DIR)
    options_path = atomic_write_json(stages / "generate.options.json", options, mkdir=True)
    classes_path = atomic_write_json(stages / "generate.classes.json", list(ctx.classnames))
    command = torchrun_command(ctx, options_path, classes_path)
    done = subprocess.run(command, check=False)
    summary_path = ctx.path(layout.GENERATED_DIR) / SUMMARY_JSON
    if done.returncode != 0 or not summary_path.is_file():
        raise PipelineError(
            f"generate: torchrun with {ctx.cfg.nproc_per_node} processes exited with {done.returncode}; "
            "rerun the same command to resume"
        )
    merged = json.loads(summary_path.read_text(encoding="utf-8"))
    if not merged.get("dataset_complete"):
        raise PipelineError(f"generate: {ctx.path(layout.GENERATED_DIR)} is incomplete; rerun to resume")
    totals = merged["totals"]
    return {
        "images": totals["images"],
        "images_resumed": totals["images_resumed"],
        "shards": totals["shards_written"] + totals["shards_resumed"],
        "images_per_second": round(totals["images_per_second"], 4),
        "base_respacing": gcfg.base_respacing,
        "size": gcfg.size,
        "ranks": merged["world_size"],
    }


STAGE = Stage("generate", (layout.GENERATED_DIR,), _inputs, run, keep_partial=True)
