"""The epoch in progress on one rank: how far it is, its running loss sums and what it has read."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(slots=True)
class EpochSums:
    """One rank's running sums for the epoch in progress; saved in in-epoch checkpoints, so a resumed epoch
    reports the same loss as an uninterrupted one."""

    loss_sum: torch.Tensor
    loss_n: int
    window_sum: torch.Tensor
    window_n: int
    keys_digest: bytes
    """SHA-256 chained over the sample keys of every micro-batch consumed so far."""

    @classmethod
    def fresh(cls, device: torch.device) -> EpochSums:
        zero = torch.zeros((), dtype=torch.float64, device=device)
        return cls(zero, 0, zero.clone(), 0, b"")

    def add_keys(self, keys: list[str]) -> None:
        self.keys_digest = hashlib.sha256(self.keys_digest + "\n".join(keys).encode()).digest()

    def add_loss(self, loss: torch.Tensor) -> None:
        """Add one micro-batch's loss to the epoch's and the logging window's sums (no host sync)."""
        value = loss.detach().double()
        self.loss_sum += value
        self.loss_n += 1
        self.window_sum += value
        self.window_n += 1

    def take_window(self) -> tuple[float, int]:
        """The logging window's loss sum and count, then an empty window."""
        window = self.window_sum.item(), self.window_n
        self.window_sum.zero_()
        self.window_n = 0
        return window

    def to_saved(self) -> dict[str, Any]:
        return {
            "loss_sum": self.loss_sum.item(),
            "loss_n": self.loss_n,
            "window_sum": self.window_sum.item(),
            "window_n": self.window_n,
            "keys_sha256": self.keys_digest.hex(),
        }

    def load(self, saved: dict[str, Any]) -> None:
        """Take the saved sums (float64 values round-trip exactly); the keys digest stays the replayed one."""
        self.loss_sum.fill_(float(saved["loss_sum"]))
        self.loss_n = int(saved["loss_n"])
        self.window_sum.fill_(float(saved["window_sum"]))
        self.window_n = int(saved["window_n"])


@dataclass(slots=True)
class EpochProgress:
    """One rank's epoch in progress (``index`` is 0-based)."""

    index: int
    sums: EpochSums
    log_keys: bool
    skipped_before: int = 0
    """The skip counter's value when the epoch started (its skips are the difference at the end)."""
    micro_batches: int = 0
    """Micro-batches of the epoch consumed so far, replayed ones included."""
    resumed_at: int = 0
    """Micro-batches replayed before training went on (0: the epoch was trained from its start)."""
    replay_s: float = 0.0
    wait_s: float = 0.0
    """Time spent waiting for batches while training (not replaying)."""
    started: float = field(default_factory=time.perf_counter)
    """``perf_counter`` when training (not the replay) started."""
    keys: list[str] = field(default_factory=list)
    """The sample keys consumed, in order (only with ``log_keys``)."""
    shards: set[str] = field(default_factory=set)

    def consume(self, keys: list[str], shards: list[str]) -> None:
        """Count one micro-batch read (trained on or replayed) and what it held."""
        self.shards.update(shards)
        self.sums.add_keys(keys)
        if self.log_keys:
            self.keys.extend(keys)
        self.micro_batches += 1
