"""The plumbing of ``synth-pipeline``: its configuration, the stage bookkeeping (markers, fingerprints,
resume), one adapter module per stage (``stage_*.py``) and the HTML report. The command itself is
:mod:`synthdata.tools.pipeline`; see ``docs/pipeline.md``.
"""

from synthdata.tools._pipeline.config import PipelineConfig, PipelineError
from synthdata.tools._pipeline.context import RunContext, Stage
from synthdata.tools._pipeline.report import render_report
from synthdata.tools._pipeline.runner import STAGES, PipelineResult, run_pipeline, run_stage
from synthdata.tools._pipeline.stages import StageMarker, fingerprint, read_marker

__all__ = [
    "STAGES",
    "PipelineConfig",
    "PipelineError",
    "PipelineResult",
    "RunContext",
    "Stage",
    "StageMarker",
    "fingerprint",
    "read_marker",
    "render_report",
    "run_pipeline",
    "run_stage",
]
