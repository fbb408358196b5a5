"""Per-shard score checkpoints: a killed run resumes without rescoring the shards it finished.

``OUT/.filter-scores/`` holds ``fingerprint.json`` (what the scores depend on: model, weights, precision,
device type, classes, templates) and one ``<input shard>.jsonl`` per scored input shard, written atomically:
a header line (the shard's name, its sidecar's sha256 and key count) and a line per sample. An entry is used
only if the fingerprint and the input shard's sidecar still match; anything else is rescored.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from dataclasses import fields
from pathlib import Path
from typing import Any

from synthdata.filter._types import SampleScore
from synthdata.shards.atomic import atomic_open
from synthdata.shards.identity import compare_identity, read_identity, record_identity

log = logging.getLogger(__name__)

SCHEMA = "synthdata.filter-scores/1"
FINGERPRINT = "fingerprint.json"  # the settings the checkpoints were scored with (synthdata.shards.identity)
_FIELDS = tuple(f.name for f in fields(SampleScore) if f.name != "kept")


class ScoreCache:
    """The score checkpoints of one output directory for one fingerprint.

    Nothing is written until the first :meth:`save`: a run that fails before scoring a shard leaves no
    directory behind, and checkpoints made with other settings (or ignored with ``reuse=False``) stay
    untouched until then, when they are replaced.
    """

    def __init__(self, directory: Path, fingerprint: dict[str, Any], *, reuse: bool = True) -> None:
        self.directory = Path(directory)
        self.fingerprint = {"schema": SCHEMA, **fingerprint}
        check = compare_identity(read_identity(self.directory / FINGERPRINT), self.fingerprint)
        self._current = reuse and check.status == "same"
        if check.status == "changed":
            log.info("score checkpoints in %s were made with other settings (%s); rescoring", self.directory,
                     check.describe())

    def _start(self) -> None:
        """Replace whatever the directory holds with this fingerprint (first save of a new set)."""
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        record_identity(self.directory / FINGERPRINT, self.fingerprint, what="filter scores")
        self._current = True

    def _path(self, shard_name: str) -> Path:
        # shard_name is a file name listed from the input directory, never user text
        return self.directory / f"{shard_name}.jsonl"

    def load(self, shard_name: str, sidecar: dict[str, Any]) -> list[SampleScore] | None:
        """The checkpointed scores of a shard, or None if absent, unreadable or made from another version."""
        if not self._current:
            return None
        try:
            lines = self._path(shard_name).read_text(encoding="utf-8").splitlines()
            header = json.loads(lines[0])
            rows = [json.loads(line) for line in lines[1:]]
        except (FileNotFoundError, IndexError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        keys = list(sidecar.get("keys") or [])
        if header != _header(shard_name, sidecar) or [r.get("key") for r in rows] != keys:
            return None
        try:
            return [SampleScore(**{k: r.get(k) for k in _FIELDS}) for r in rows]
        except TypeError:
            return None

    def save(self, shard_name: str, sidecar: dict[str, Any], scores: list[SampleScore]) -> None:
        """Checkpoint a finished shard's scores (``scores`` in the sidecar's key order)."""
        if not self._current:
            self._start()
        with atomic_open(self._path(shard_name), "w") as fh:
            fh.write(json.dumps(_header(shard_name, sidecar), sort_keys=True) + "\n")
            for s in scores:
                row = {k: getattr(s, k) for k in _FIELDS}
                fh.write(json.dumps(row, sort_keys=True, allow_nan=False) + "\n")

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.directory)
        self._current = False


def _header(shard_name: str, sidecar: dict[str, Any]) -> dict[str, Any]:
    return {
        "shard": shard_name,
        "sha256": sidecar.get("sha256"),
        "count": len(sidecar.get("keys") or []),
    }
