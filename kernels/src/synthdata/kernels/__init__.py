"""synthdata.kernels: fused kernels for GLIDE sampling, each with a plain PyTorch fallback.

- :func:`attention`: image queries over [text keys; image keys] (triton / xformers / sdpa / math);
- :func:`group_norm_silu`: GroupNorm(32) in fp32 (+ scale-shift) (+ SiLU) (triton / torch);
- :func:`guided_ancestral_step`, :func:`ddim_step`: guidance combine + sampler update (triton / torch),
  with :class:`SamplerTables` holding each step's coefficients on the device;
- :class:`GraphRunner` / :func:`capture`: CUDA-graph capture and replay with a fixed-shape contract
  (eager elsewhere), :func:`pad_batch` / :func:`unpad_batch`, :func:`maybe_compile`.

Every op takes ``backend="auto"`` (or a name, or its ``SYNTHDATA_*_BACKEND`` environment variable); an
explicitly requested backend that cannot run the inputs raises :class:`BackendUnavailableError`.
Choices are logged once per reason on the ``synthdata.kernels`` logger. ``python -m synthdata.kernels``
prints :func:`available_backends`. See ``docs/kernels.md``.
"""

from __future__ import annotations

import importlib.util
import os
import platform
from typing import Any

import torch

from synthdata.kernels import _triton
from synthdata.kernels._select import BackendUnavailableError, reset_log_once
from synthdata.kernels.attention import ATTENTION, TRITON_HEAD_DIMS, attention, attention_math
from synthdata.kernels.graphs import (
    GraphRunner,
    GraphShapeError,
    capture,
    maybe_compile,
    pad_batch,
    unpad_batch,
)
from synthdata.kernels.norm import NORM, group_norm_silu, group_norm_torch
from synthdata.kernels.sampler import (
    SAMPLER,
    AncestralCoefs,
    DDIMCoefs,
    SamplerTables,
    StepOptions,
    ddim_step,
    guided_ancestral_step,
)

__all__ = [
    "TRITON_HEAD_DIMS",
    "AncestralCoefs",
    "BackendUnavailableError",
    "DDIMCoefs",
    "GraphRunner",
    "GraphShapeError",
    "SamplerTables",
    "StepOptions",
    "attention",
    "attention_math",
    "available_backends",
    "capture",
    "ddim_step",
    "group_norm_silu",
    "group_norm_torch",
    "guided_ancestral_step",
    "maybe_compile",
    "pad_batch",
    "reset_log_once",
    "unpad_batch",
]


def available_backends() -> dict[str, Any]:
    """What can run in this process: per op and backend ``"ok"`` or the reason it cannot, plus versions.

    This is the process-wide picture (installed libraries, CUDA, interpreter mode); a given call may still
    be ineligible for its tensors (dtype, head dim, layout), which the call itself reports.
    """
    cuda = torch.cuda.is_available()
    problem = _triton.triton_problem()
    if problem is not None:
        triton_state = problem
    elif _triton.interpreting():
        triton_state = "ok (interpreter, TRITON_INTERPRET=1: explicit requests only, CPU tensors allowed)"
    elif not cuda:
        triton_state = "no CUDA device (compiled triton kernels need CUDA tensors)"
    else:
        triton_state = "ok"
    from synthdata.kernels.attention import _xformers_ops

    xops, xreason = _xformers_ops()
    xformers_state = ("ok" if cuda else "no CUDA device") if xops is not None else xreason
    ops = {
        ATTENTION: {"triton": triton_state, "xformers": xformers_state, "sdpa": "ok", "math": "ok"},
        NORM: {"triton": triton_state, "torch": "ok"},
        SAMPLER: {"triton": triton_state, "torch": "ok"},
    }
    report: dict[str, Any] = {}
    for op, states in ops.items():
        report[op.name] = {
            "env": f"{op.env}={os.environ.get(op.env, '') or 'auto'}",
            "order": list(op.backends),
            "backends": states,
        }
    report["graphs"] = "ok (CUDA graphs)" if cuda else "eager fallback (CUDA is not available)"
    report["compile"] = "ok" if hasattr(torch, "compile") else "torch.compile missing"
    report["versions"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": _triton.triton_version(),
        "xformers": getattr(xops, "__version__", None) if xops is not None else None,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "xformers_installed": importlib.util.find_spec("xformers") is not None,
    }
    return report
