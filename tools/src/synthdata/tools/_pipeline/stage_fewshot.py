"""Stage ``fewshot`` (with ``--few-shot DIR --shots K`` only): draw K real images a class from DIR (an
ImageFolder or shards) with :func:`synthdata.tune.sample_few_shot` and write them to ``R/few_shot/`` as an
ImageFolder (``NNN_slug/NNNNN.png``). Generation takes its Real Guidance references from there and tuning
its real images, so both use the same K images a class, as in the paper."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from synthdata.tools._pipeline import layout
from synthdata.tools._pipeline._io import atomic_write_bytes
from synthdata.tools._pipeline.config import PipelineError
from synthdata.tools._pipeline.context import RunContext, Stage


def _enabled(ctx: RunContext) -> bool:
    return ctx.cfg.few_shot is not None


def _inputs(ctx: RunContext) -> dict[str, Path]:
    return {"few_shot": Path(ctx.cfg.few_shot)} if ctx.cfg.few_shot else {}


def run(ctx: RunContext) -> dict[str, Any]:
    from synthdata.shards import ShardError, imagefolder_dirname
    from synthdata.tune import DataError, load_image_set, sample_few_shot

    cfg = ctx.cfg
    assert cfg.few_shot is not None and cfg.shots is not None
    out = ctx.path(layout.FEW_SHOT_DIR)
    try:
        source = load_image_set(cfg.few_shot, len(ctx.classnames))
        chosen = sample_few_shot(source.labels, cfg.shots, cfg.seed, len(ctx.classnames))
        dirs = [out / imagefolder_dirname(c, name) for c, name in enumerate(ctx.classnames)]
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)
        counts = [0] * len(ctx.classnames)
        sources: list[str] = []
        for i, image, label in source.iter_images(chosen):
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            atomic_write_bytes(dirs[label] / f"{counts[label]:05d}.png", buf.getvalue())
            counts[label] += 1
            path, key = source.items[i]
            sources.append(f"{path.name}:{key}" if key else str(path.relative_to(source.roots[0])))
    except (DataError, ShardError, FileNotFoundError, OSError) as exc:
        raise PipelineError(f"few-shot data {cfg.few_shot}: {exc}") from exc
    return {"shots": cfg.shots, "source_kind": source.kind, "available": len(source), "chosen": sources[:2000]}


STAGE = Stage("fewshot", (layout.FEW_SHOT_DIR,), _inputs, run, enabled=_enabled)
