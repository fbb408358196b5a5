"""Triton detection and the interpreter switch, read once, when triton is first imported.

Triton 3.9 decides between compiled and interpreted kernels when a function is decorated, and its own
standard library (``tl.sum``, ``tl.max``, ``tl.zeros``, ``tl.sigmoid`` …) is decorated when
``triton.language`` is imported. ``TRITON_INTERPRET=1`` therefore has to be set before triton is
imported; a process cannot mix the two modes. This module imports triton lazily, reads which mode the
standard library was built in, and decorates our kernels in that same mode (:func:`jit`). Setting or
clearing ``TRITON_INTERPRET`` after triton was imported is reported as a reason, never acted on.

In compiled mode the triton backends take CUDA tensors only; in interpreter mode they take CPU (or CUDA)
tensors, fp32 included, and ``"auto"`` never picks them (the interpreter is for tests).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

_state: dict[str, Any] = {}


def _env_interpret() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


def _load() -> dict[str, Any]:
    if not _state:
        try:
            triton = importlib.import_module("triton")
            standard = importlib.import_module("triton.language.standard")
            interpreter = importlib.import_module("triton.runtime.interpreter")
        except Exception as exc:  # ImportError, or a broken install raising at import
            _state.update(triton=None, error=f"triton is not importable ({type(exc).__name__}: {exc})")
        else:
            interpret = isinstance(standard.zeros, interpreter.InterpretedFunction)
            _state.update(triton=triton, error=None, interpret=interpret, version=triton.__version__)
    return _state


def triton_problem() -> str | None:
    """Why triton kernels cannot run in this process at all, or ``None`` if they can."""
    state = _load()
    if state["triton"] is None:
        return state["error"]
    if state["interpret"] != _env_interpret():
        return (
            f"TRITON_INTERPRET changed after triton was imported (triton runs "
            f"{'interpreted' if state['interpret'] else 'compiled'}); set it before importing triton"
        )
    return None


def interpreting() -> bool:
    """Whether triton (once importable) runs kernels in its CPU interpreter.

    Before triton is imported the answer is predicted from ``TRITON_INTERPRET`` without importing it,
    so a CPU-only process that never asks for triton never pays for the import.
    """
    if not _state and "triton" not in sys.modules:
        return _env_interpret()
    return bool(_load().get("interpret", False))


def triton_version() -> str | None:
    return _load().get("version")


def device_problem(*tensors: Any, auto: bool) -> str | None:
    """Device part of every triton eligibility check (call after the cheap shape/dtype checks)."""
    cuda = all(t.is_cuda for t in tensors if t is not None)
    if not interpreting():
        if not cuda:
            return "not a CUDA tensor"
        return triton_problem()
    problem = triton_problem()
    if problem is not None:
        return problem
    if auto:
        return "triton runs in its interpreter (TRITON_INTERPRET=1): used only when requested explicitly"
    return None


# Compiled kernels contract a*b+c into FMAs, as triton did by default up to 3.9; chosen explicitly because
# 3.10 flips the default (and 3.9 warns while it is unset). The interpreter drops the option.
FP_FUSION = {"enable_fp_fusion": True}


def jit(fn: Any) -> Any:
    """Decorate ``fn`` as a triton kernel in the mode triton's standard library was built in."""
    state = _load()
    if state["triton"] is None:
        raise RuntimeError(state["error"])
    if state["interpret"]:
        from triton.runtime.interpreter import InterpretedFunction

        return InterpretedFunction(fn)
    from triton.runtime.jit import JITFunction

    return JITFunction(fn)
