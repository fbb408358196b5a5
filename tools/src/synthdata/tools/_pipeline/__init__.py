"""The plumbing of ``synth-pipeline``: its configuration, the stage bookkeeping (markers, fingerprints,
resume), one adapter module per stage (``stage_*.py``), the plan (``--dry-run``) and the HTML report. The
command itself is :mod:`synthdata.tools.pipeline`; see ``docs/pipeline.md``.

The names below are imported on first use (PEP 562), so the configuration loads without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synthdata.tools._pipeline.config import PipelineConfig, PipelineError
    from synthdata.tools._pipeline.context import RunContext, Stage
    from synthdata.tools._pipeline.plan import dry_run
    from synthdata.tools._pipeline.report import render_report
    from synthdata.tools._pipeline.runner import STAGES, PipelineResult, run_pipeline, run_stage
    from synthdata.tools._pipeline.stages import StageMarker, fingerprint, read_marker

_SOURCE = {
    "PipelineConfig": "config",
    "PipelineError": "config",
    "RunContext": "context",
    "Stage": "context",
    "dry_run": "plan",
    "render_report": "report",
    "STAGES": "runner",
    "PipelineResult": "runner",
    "run_pipeline": "runner",
    "run_stage": "runner",
    "StageMarker": "stages",
    "fingerprint": "stages",
    "read_marker": "stages",
}

__all__ = [
    "STAGES",
    "PipelineConfig",
    "PipelineError",
    "PipelineResult",
    "RunContext",
    "Stage",
    "StageMarker",
    "dry_run",
    "fingerprint",
    "read_marker",
    "render_report",
    "run_pipeline",
    "run_stage",
]


def __getattr__(name: str) -> Any:
    module = _SOURCE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
