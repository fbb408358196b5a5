"""Stage ``generate``: ``R/prompts.jsonl`` → ``R/generated`` (shards + ``dataset.json``) with GLIDE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthdata.tools._pipeline import layout
from synthdata.tools._pipeline.config import PipelineError
from synthdata.tools._pipeline.context import RunContext, Stage


def _inputs(ctx: RunContext) -> dict[str, Path]:
    deps = {"prompts": ctx.path(layout.PROMPTS)}
    if ctx.cfg.few_shot:
        deps["few_shot"] = Path(ctx.cfg.few_shot)
    return deps


def run(ctx: RunContext) -> dict[str, Any]:
    raise PipelineError("generate: the generation runner is not available yet")


STAGE = Stage("generate", (layout.GENERATED_DIR,), _inputs, run, keep_partial=True)
