"""The plumbing of ``synth-pipeline``: its configuration, the stage bookkeeping (markers, fingerprints,
resume), one adapter module per stage (``stage_*.py``), the plan (``--dry-run``) and the HTML report. The
command itself is :mod:`synthdata.tools.pipeline`; see ``docs/pipeline.md``.

The names below are imported on first use (``lazy_loader``), so the configuration loads without torch.
"""

import lazy_loader

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submodules=["config", "context", "plan", "report", "runner", "stages"],
    submod_attrs={
        "config": ["PipelineConfig", "PipelineError"],
        "context": ["RunContext", "Stage"],
        "plan": ["dry_run"],
        "report": ["render_report"],
        "runner": ["STAGES", "PipelineResult", "run_pipeline", "run_stage"],
        "stages": ["StageMarker", "fingerprint", "read_marker"],
    },
)

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
