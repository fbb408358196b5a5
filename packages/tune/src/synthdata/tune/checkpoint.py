"""Per-epoch training checkpoints, so a killed run resumes where it stopped and ends with the same weights.

A checkpoint is one file written atomically after every epoch with ``torch.save`` and read back with
``torch.load(weights_only=True)`` (tensors, numbers, strings, lists and dicts only; never pickled objects).
It holds the trained modules' state dicts, the AdamW and schedule states, the epoch and step reached, the
per-epoch log rows, and ``run_id``: a digest of everything that decides the run's numbers. Batch order is a
pure function of (seed, epoch, step), so nothing else is needed to continue bit for bit.
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from synthdata.shards.identity import compare_identity, jsonable, settings_digest
from synthdata.tune._io import atomic_write_bytes

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "synthdata.tune-checkpoint/1"


class ResumeError(ValueError):
    """A checkpoint exists but belongs to another run (different config, data, classes or model)."""


class Checkpoint:
    """The checkpoint file of one run; ``run_id`` must match for :meth:`load` to resume from it."""

    def __init__(self, path: str | os.PathLike[str], identity: dict[str, Any]):
        self.path = Path(path)
        self.identity = jsonable(identity)
        self.run_id = settings_digest(identity)

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is no checkpoint. Raises :class:`ResumeError` on mismatch."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for corrupt/foreign files
            raise ResumeError(
                f"{self.path}: unreadable checkpoint ({type(exc).__name__}: {exc}); delete it or pass "
                "--fresh to start over"
            ) from exc
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise ResumeError(
                f"{self.path} is not a synthdata tuning checkpoint; delete it or use another --out"
            )
        if state.get("run_id") != self.run_id:
            saved = state.get("run_identity")
            check = compare_identity(json.loads(saved) if isinstance(saved, str) else None, self.identity)
            what = f" ({check.describe()})" if check.diff else ", data, classes or model"
            raise ResumeError(
                f"{self.path} was written by a run with other settings{what}; use another --out, or pass --fresh "
                "to discard it and start over"
            )
        log.info("resuming from %s (epoch %d, step %d)", self.path, state["epoch"], state["step"])
        return state

    def save(self, state: dict[str, Any]) -> Path:
        buf = io.BytesIO()
        identity = json.dumps(self.identity, sort_keys=True)  # a string: weights_only loading keeps it plain
        torch.save({**state, "format": CHECKPOINT_FORMAT, "run_id": self.run_id, "run_identity": identity}, buf)
        return atomic_write_bytes(self.path, buf.getvalue())

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
