"""Backend selection shared by every kernel: argument > environment variable > automatic choice.

An explicitly requested backend (argument or environment variable) that is not eligible for the given
tensors raises :class:`BackendUnavailableError`; it is never swapped for another one. ``"auto"`` takes the
first eligible backend in the op's preference order and logs the choice (with the reasons the faster
ones were skipped) once per distinct message on the ``synthdata.kernels`` logger.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

log = logging.getLogger("synthdata.kernels")

_seen: set[str] = set()
_seen_lock = threading.Lock()


def log_once(message: str, level: int = logging.INFO) -> None:
    """Log ``message`` on the ``synthdata.kernels`` logger the first time it is seen in this process.

    Silent while torch.compile traces: a lock or a logging call there would split the compiled graph at
    every kernel call (the same choices are logged by eager calls).
    """
    if torch.compiler.is_compiling():
        return
    with _seen_lock:
        if message in _seen:
            return
        _seen.add(message)
    log.log(level, message)


def reset_log_once() -> None:
    """Forget which messages were logged (tests use this to observe the once-per-reason logging)."""
    with _seen_lock:
        _seen.clear()


class BackendUnavailableError(RuntimeError):
    """An explicitly requested backend cannot run these inputs (the message says why)."""


@dataclass(frozen=True, slots=True)
class Op:
    """One kernel family: its name, its environment variable and its backends in preference order."""

    name: str
    env: str
    backends: tuple[str, ...]

    def requested(self, backend: str) -> tuple[str, str]:
        """The backend asked for and who asked: ``(name, "argument" | "$ENV" | "auto")``."""
        if not isinstance(backend, str):
            raise TypeError(f"{self.name}: backend must be a string, got {type(backend).__name__}")
        choice = backend.strip().lower()
        if choice not in ("auto", *self.backends):
            raise ValueError(
                f"{self.name}: unknown backend {backend!r}; choose one of {('auto', *self.backends)}"
            )
        if choice != "auto":
            return choice, "argument"
        env = os.environ.get(self.env, "").strip().lower()
        if env in ("", "auto"):
            return "auto", "auto"
        if env not in self.backends:
            raise ValueError(
                f"{self.name}: {self.env}={os.environ[self.env]!r} is not a backend; "
                f"choose one of {('auto', *self.backends)}"
            )
        return env, f"${self.env}"


Check = Callable[[], "str | None"]


def resolve(op: Op, backend: str, checks: Mapping[str, Check]) -> str:
    """Pick the backend for one call. ``checks[name]()`` returns ``None`` if eligible, else the reason."""
    choice, source = op.requested(backend)
    if choice != "auto":
        reason = checks[choice]()
        if reason is not None:
            raise BackendUnavailableError(
                f"{op.name}: backend {choice!r} (requested by {source}) cannot run these inputs: {reason}"
            )
        log_once(f"{op.name}: using backend {choice!r} (requested by {source})")
        return choice
    skipped: list[str] = []
    for name in op.backends:
        reason = checks[name]()
        if reason is None:
            why = f" (skipped {'; '.join(skipped)})" if skipped else ""
            log_once(f"{op.name}: auto chose backend {name!r}{why}")
            return name
        skipped.append(f"{name}: {reason}")
    raise BackendUnavailableError(f"{op.name}: no backend can run these inputs ({'; '.join(skipped)})")


def grad_reason(*tensors: torch.Tensor | None) -> str | None:
    """Forward-only kernels refuse inputs that autograd would need to differentiate through."""
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        return "an input requires grad (forward-only kernel; run under torch.no_grad())"
    return None
