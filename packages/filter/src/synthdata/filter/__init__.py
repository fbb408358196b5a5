"""synthdata.filter: CLIP zero-shot scoring and selection of synthetic images (He et al., ICLR 2023).

:func:`filter_shards` runs the whole job (score → select → filtered shards + ``scores.jsonl`` + report);
:func:`score_shards` and :func:`select` are its two halves; :class:`ScoreCache` holds the per-shard score
checkpoints that make a run resumable. Class names and templates are arguments: this
package never looks up a data set by name. See ``docs/filter.md``.

The names below are imported on first use (``lazy_loader``), so :mod:`synthdata.filter.layout` (the output's file
names) loads without torch and open_clip.
"""

import lazy_loader

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submodules=[
        "_cache",
        "_job",
        "_outdir",
        "_report",
        "_scoring",
        "_selection",
        "_types",
        "_writing",
        "config",
        "layout",
    ],
    submod_attrs={
        "_cache": ["ScoreCache"],
        "config": ["FilterConfig"],
        "_job": ["FilterResult", "filter_shards"],
        "_outdir": ["check_out_dir", "prepare_out_dir"],
        "_scoring": ["ClassListError", "check_classes", "score_shards"],
        "_selection": ["RULES", "check_rule", "select"],
        "_types": ["SampleScore", "ScoreResult"],
        "layout": [
            "CACHE_DIR",
            "PRODUCER",
            "REPORT_SUFFIX",
            "report_location",
            "REPORT_FILE",
            "REPORT_PNGS",
            "SCORES_FILE",
            "SHARD_PREFIX",
        ],
    },
)

__all__ = [
    "CACHE_DIR",
    "PRODUCER",
    "REPORT_FILE",
    "REPORT_PNGS",
    "REPORT_SUFFIX",
    "RULES",
    "SCORES_FILE",
    "SHARD_PREFIX",
    "ClassListError",
    "FilterConfig",
    "FilterResult",
    "SampleScore",
    "ScoreCache",
    "ScoreResult",
    "check_classes",
    "check_out_dir",
    "check_rule",
    "filter_shards",
    "prepare_out_dir",
    "report_location",
    "score_shards",
    "select",
]
