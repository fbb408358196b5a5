"""Stable per-item seeds and the rank/world-size work split.

Seeds come from a hash of (global seed, item id), never from Python's ``hash`` (salted per process) or from
batch position, so the same work item gets the same noise on any machine, GPU count or resume point.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

SEED_BITS = 63


def item_seed(global_seed: int, item_id: str, *, stream: str = "") -> int:
    """Return a 63-bit seed derived from ``global_seed`` and ``item_id`` (and an optional stream name).

    Uses SHA-256 of a canonical UTF-8 encoding, so the value is the same on every platform and Python version.
    """
    if not isinstance(global_seed, int) or isinstance(global_seed, bool):
        raise TypeError(f"global_seed must be an int, got {type(global_seed).__name__}")
    material = f"synthdata-seed-v1\x00{global_seed}\x00{stream}\x00{item_id}".encode()
    digest = hashlib.sha256(material).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << SEED_BITS) - 1)


@dataclass(frozen=True, slots=True)
class WorkSplit:
    """This process's place in a multi-process job."""

    rank: int
    world_size: int
    source: str = "default"

    def take(self, items: Sequence[T]) -> list[T]:
        """The items this rank owns: a strided split (item i goes to rank i mod world_size)."""
        return [item for i, item in enumerate(items) if i % self.world_size == self.rank]


def work_split(env: Mapping[str, str] | None = None) -> WorkSplit:
    """Rank and world size from torchrun (``RANK``/``WORLD_SIZE``) or Slurm (``SLURM_PROCID``/``SLURM_NTASKS``).

    torchrun's variables win when both are set. Without either, this is a single process (rank 0 of 1).
    """
    env = os.environ if env is None else env
    for rank_var, size_var, source in (
        ("RANK", "WORLD_SIZE", "torchrun"),
        ("SLURM_PROCID", "SLURM_NTASKS", "slurm"),
    ):
        if rank_var in env or size_var in env:
            try:
                rank, world_size = int(env.get(rank_var, "0")), int(env.get(size_var, "1"))
            except ValueError as exc:
                raise ValueError(
                    f"{rank_var}={env.get(rank_var)!r} / {size_var}={env.get(size_var)!r} are not integers; "
                    "unset them or set both to whole numbers"
                ) from exc
            if world_size < 1 or not 0 <= rank < world_size:
                raise ValueError(
                    f"{rank_var}={rank} is outside 0..{size_var}-1 ({world_size}); fix the launcher's variables"
                )
            return WorkSplit(rank, world_size, source)
    return WorkSplit(0, 1)
