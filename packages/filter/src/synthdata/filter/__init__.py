"""synthdata.filter: CLIP zero-shot scoring and selection of synthetic images (He et al., ICLR 2023).

:func:`filter_shards` runs the whole job (score → select → filtered shards + ``scores.jsonl`` + report);
:func:`score_shards` and :func:`select` are its two halves; :class:`ScoreCache` holds the per-shard score
checkpoints that make a run resumable. Class names and templates are arguments: this
package never looks up a data set by name. See ``docs/filter.md``.

The names below are imported on first use (PEP 562), so :mod:`synthdata.filter.layout` (the output's file
names) loads without torch and open_clip.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synthdata.filter._cache import ScoreCache
    from synthdata.filter._job import FilterResult, filter_shards
    from synthdata.filter._outdir import check_out_dir, prepare_out_dir
    from synthdata.filter._scoring import ClassListError, check_classes, score_shards
    from synthdata.filter._selection import RULES, check_rule, select
    from synthdata.filter._types import SampleScore, ScoreResult
    from synthdata.filter.config import FilterConfig
    from synthdata.filter.layout import (
        CACHE_DIR,
        PRODUCER,
        REPORT_DIR,
        REPORT_FILE,
        REPORT_PNGS,
        SCORES_FILE,
        SHARD_PREFIX,
    )

_SOURCE: dict[str, str] = {
    "ScoreCache": "_cache",
    "FilterConfig": "config",
    "FilterResult": "_job",
    "filter_shards": "_job",
    "check_out_dir": "_outdir",
    "prepare_out_dir": "_outdir",
    "ClassListError": "_scoring",
    "check_classes": "_scoring",
    "score_shards": "_scoring",
    "RULES": "_selection",
    "check_rule": "_selection",
    "select": "_selection",
    "SampleScore": "_types",
    "ScoreResult": "_types",
    "CACHE_DIR": "layout",
    "PRODUCER": "layout",
    "REPORT_DIR": "layout",
    "REPORT_FILE": "layout",
    "REPORT_PNGS": "layout",
    "SCORES_FILE": "layout",
    "SHARD_PREFIX": "layout",
}
_SUBMODULES = frozenset(_SOURCE.values()) | {"_report", "_writing", "config"}

__all__ = [
    "CACHE_DIR",
    "PRODUCER",
    "REPORT_DIR",
    "REPORT_FILE",
    "REPORT_PNGS",
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
    "score_shards",
    "select",
]


def __getattr__(name: str) -> Any:
    module = _SOURCE.get(name)
    if module is None:
        if name in _SUBMODULES:  # ``synthdata.filter._job`` after a bare ``import synthdata.filter``
            return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
