"""synthdata.filter: CLIP zero-shot scoring and selection of synthetic images (He et al., ICLR 2023).

:func:`filter_shards` runs the whole job (score → select → filtered shards + ``scores.jsonl`` + report);
:func:`score_shards` and :func:`select` are its two halves; :class:`ScoreCache` holds the per-shard score
checkpoints that make a run resumable. Class names and templates are arguments: this
package never looks up a data set by name. See ``docs/filter.md``.
"""

from synthdata.filter._cache import CACHE_DIR, ScoreCache
from synthdata.filter._job import (
    PRODUCER,
    REPORT_DIR,
    REPORT_FILE,
    SCORES_FILE,
    FilterConfig,
    FilterResult,
    check_out_dir,
    filter_shards,
    prepare_out_dir,
)
from synthdata.filter._scoring import ClassListError, SampleScore, ScoreResult, check_classes, score_shards
from synthdata.filter._selection import RULES, check_rule, select

__all__ = [
    "CACHE_DIR",
    "PRODUCER",
    "REPORT_DIR",
    "REPORT_FILE",
    "RULES",
    "SCORES_FILE",
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
    "score_shards",
    "select",
]
