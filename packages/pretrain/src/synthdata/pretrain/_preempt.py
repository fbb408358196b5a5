"""Checkpoint on preemption: signal handlers that only set a flag, and the ranks' agreement on it.

Schedulers preempt a job by sending SIGTERM (Kubernetes, Slurm) or a signal chosen by the user (Slurm's
``--signal=USR1@90``) some seconds before they kill it. The handler installed here does nothing but record
the signal number (no I/O, no locks: it may run between any two bytecodes of the training loop). At every
optimizer-update boundary the trainer asks :meth:`PreemptionWatch.agreed`, which under DDP is one
``all_reduce(MAX)`` of a single int32, so all ranks learn at the same update that some rank was signalled
(a scheduler may signal one node only) and take the same decision: save, then stop.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist

from synthdata.pretrain import _dist
from synthdata.pretrain._dist import DistInfo
from synthdata.pretrain.config import PretrainError, parse_signals

log = logging.getLogger(__name__)

# Test hook: ``N`` makes rank 0 send itself SIGTERM right after optimizer update N (before the ranks agree,
# so the checkpoint lands at N); ``N@R`` does it on rank R only, ``N@R:USR1`` with another signal, and
# ``N@R:TERM:group`` to its whole process group (its DataLoader workers too, as torchrun does), which is only
# safe where the rank leads a group of its own (torchrun starts each rank in a session of its own).
SIGNAL_AFTER_ENV = "SYNTHDATA_PRETRAIN_SIGNAL_AFTER_UPDATES"


class PreemptionWatch:
    """Records the first preemption signal this process receives; restores the old handlers on close."""

    def __init__(self, signals: tuple[signal.Signals, ...], info: DistInfo) -> None:
        self.signals = signals
        self.received = 0
        """The number of the first signal received here (0: none). Written only by the handler."""
        self.stopped = 0
        """The signal the ranks agreed to stop on (0: none yet)."""
        self._info = info
        self._previous: dict[signal.Signals, Any] = {}
        # One int32 on the CPU, reused every update. Under NCCL it goes through a gloo group of its own: a
        # device flag would make .item() wait for all the GPU work queued so far, every update, and the host
        # could no longer run ahead of the GPU. (Every rank builds the group here, at the same point.)
        self._flag: torch.Tensor | None = None
        self._group: Any = None
        if info.distributed and signals:
            self._flag = torch.zeros(1, dtype=torch.int32)
            if dist.get_backend() != "gloo":
                self._group = dist.new_group(backend="gloo")

    @property
    def installed(self) -> tuple[int, ...]:
        """The signals whose handlers this process installed (DataLoader workers then shield themselves)."""
        return tuple(int(sig) for sig in self._previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.received:  # keep the first; a second signal while saving changes nothing
            self.received = signum

    def install(self) -> None:
        """Install the handlers (Python allows it in the main thread only; elsewhere they are not installed,
        but the agreement still runs, so the ranks' collectives stay matched)."""
        if not self.signals:
            return
        if threading.current_thread() is not threading.main_thread():
            log.warning("train() runs outside the main thread: preemption signals are not handled here")
            return
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handle)

    def close(self) -> None:
        """Restore the previous handlers; but after a stop on a signal the process is about to exit, so the
        signals are ignored instead: a second notice (torchrun signals the ranks still running when the first
        one exits) must not kill it while it winds down. (Ignored, not left to our handler: Python resets the
        handlers it installed to the default action when it finalizes, and that takes a while with torch.)"""
        for sig, previous in self._previous.items():
            if self.stopped:
                signal.signal(sig, signal.SIG_IGN)
            else:
                signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    def __enter__(self) -> PreemptionWatch:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def agreed(self) -> int:
        """The signal some rank received (0: none), the same on every rank.

        Every rank must call it at the same points. Single process: no collective. Under DDP: one
        all_reduce(MAX) of one CPU int32 over gloo (its own group when training runs on NCCL), so the
        host never waits here for the GPU.
        """
        if not self.signals:
            return 0
        if self._flag is None:
            self.stopped = self.received
        else:
            self._flag.fill_(self.received)
            dist.all_reduce(self._flag, op=dist.ReduceOp.MAX, group=self._group)
            self.stopped = int(self._flag.item())
        return self.stopped

    def receivers(self) -> list[int]:
        """The ranks that received a signal themselves (a collective: call it on every rank, once)."""
        got = _dist.all_gather_objects(self.received, self._info)
        return [rank for rank, signum in enumerate(got) if signum]


@dataclass(frozen=True, slots=True)
class SignalHook:
    """The test hook parsed from ``SYNTHDATA_PRETRAIN_SIGNAL_AFTER_UPDATES``."""

    after: int
    rank: int
    signum: int
    group: bool = False

    @classmethod
    def from_env(cls) -> SignalHook | None:
        value = os.environ.get(SIGNAL_AFTER_ENV, "").strip()
        if not value:
            return None
        spec, _, name = value.partition(":")
        name, _, target = name.partition(":")
        after, _, rank = spec.partition("@")
        try:
            signums = parse_signals(name or "TERM")
            if len(signums) != 1 or target not in ("", "group"):
                raise ValueError
            return cls(int(after), int(rank or 0), int(signums[0]), target == "group")
        except (ValueError, PretrainError):
            raise PretrainError(
                f"{SIGNAL_AFTER_ENV}={value!r} is not N, N@RANK, N@RANK:SIGNAL or N@RANK:SIGNAL:group; unset it"
            ) from None

    def fire(self, update: int, rank: int) -> None:
        if update == self.after and rank == self.rank:
            if self.group:
                os.killpg(os.getpgid(0), self.signum)
            else:
                os.kill(os.getpid(), self.signum)
