"""Stage ``eval``: only for ``--smoke`` runs without ``--eval``. Writes ``R/eval/``, a procedural stand-in
test set (shards labelled with the run's classes; class i is drawn with :func:`synthdata.shards.draw_demo_image`
pattern i), so that a smoke run exercises evaluation end to end. It is not a real test set and the report
says so; a real run must give ``--eval DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthdata.tools._pipeline import layout
from synthdata.tools._pipeline.context import RunContext, Stage


def _enabled(ctx: RunContext) -> bool:
    return ctx.cfg.eval_dir is None


def _inputs(ctx: RunContext) -> dict[str, Path]:
    return {}


def run(ctx: RunContext) -> dict[str, Any]:
    import numpy as np

    from synthdata.shards import (
        DatasetInfo,
        Sample,
        ShardWriter,
        draw_demo_image,
        item_seed,
        write_dataset_json,
    )

    out = ctx.path(layout.EVAL_DIR)
    per_class = int(ctx.cfg.eval_per_class or 1)
    size = 64
    with ShardWriter(out, prefix="standin", max_count=1000) as writer:
        for n in range(per_class):
            for c, name in enumerate(ctx.classnames):
                key = f"standin-c{c:05d}-{n:05d}"
                rng = np.random.default_rng(item_seed(ctx.cfg.seed, key, stream="pipeline-eval"))
                writer.write(Sample(key, draw_demo_image(c, rng, size), c, {"class_name": name, "stand_in": True}))
    write_dataset_json(
        out,
        DatasetInfo(
            classes=list(ctx.classnames),
            name="stand-in test set",
            producer="synth-pipeline",
            config={"stand_in": True, "per_class": per_class, "seed": ctx.cfg.seed, "size": size},
        ),
    )
    return {"stand_in": True, "images": per_class * len(ctx.classnames)}


STAGE = Stage("eval", (layout.EVAL_DIR,), _inputs, run, enabled=_enabled)
