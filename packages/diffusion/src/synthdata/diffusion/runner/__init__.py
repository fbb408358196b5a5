"""The generation runner behind ``synth-generate``: prompts → GLIDE images → planned WebDataset shards.

Public API::

    GenerateConfig(out=..., images_per_prompt=..., ...)   # settings, paper defaults
    run_generation(config, prompts, classes=None, pipeline=None, split=None) -> RunSummary
    SUMMARY_JSON / rank_summary_name                      # run-level and per-rank summaries in --out
    plan_items / cut_shards / item_key                    # the deterministic plan (no model needed)
    load_references                                       # Real Guidance ImageFolder

Work is planned up front (items = prompts x [references] x replicates, cut into shards), each rank of
``RANK``/``WORLD_SIZE`` (or Slurm) takes its shards, complete shards are skipped on a rerun, and every item's
seed comes from its key. Each rank leaves its summary in ``--out``; the last to finish merges them into
``summary.json``. See ``docs/generate.md``.

The names below are imported on first use (``lazy_loader``), so the config module loads without torch
(command lines answer ``--help`` at once).
"""

import lazy_loader

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "_config": [
            "DEFAULT_SHARD_SIZE",
            "PAPER_BASE_RESPACING",
            "PAPER_UP_RESPACING",
            "SMOKE_BASE_RESPACING",
            "SMOKE_UP_RESPACING",
            "GenerateConfig",
        ],
        "_plan": [
            "SEED_STREAM",
            "PlannedShard",
            "Prompt",
            "WorkItem",
            "class_list",
            "cut_shards",
            "item_key",
            "key_base",
            "normalise_prompts",
            "plan_items",
        ],
        "_refs": ["Reference", "load_references", "scaled_start_step"],
        "_run": ["PLAN_FILE", "PRODUCER", "Pipeline", "build_pipeline", "default_device", "run_generation"],
        "_summary": ["SUMMARY_JSON", "RunSummary", "rank_summary_name", "run_line"],
        "errors": ["GenerateError"],
    },
)

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "PAPER_BASE_RESPACING",
    "PAPER_UP_RESPACING",
    "PLAN_FILE",
    "PRODUCER",
    "SEED_STREAM",
    "SMOKE_BASE_RESPACING",
    "SMOKE_UP_RESPACING",
    "SUMMARY_JSON",
    "GenerateConfig",
    "GenerateError",
    "Pipeline",
    "PlannedShard",
    "Prompt",
    "Reference",
    "RunSummary",
    "WorkItem",
    "build_pipeline",
    "class_list",
    "cut_shards",
    "default_device",
    "item_key",
    "key_base",
    "load_references",
    "normalise_prompts",
    "plan_items",
    "rank_summary_name",
    "run_generation",
    "run_line",
    "scaled_start_step",
]
