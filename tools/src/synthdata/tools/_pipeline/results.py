"""``R/results.jsonl``: every tuning run's result lines, appended (history is never lost); each block of
lines carries the run that wrote it, and readers take the latest block."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RUN_KEY = "recorded_at"


def append_results(path: Path, rows: Sequence[dict[str, Any]]) -> str:
    """Append ``rows`` as one block stamped with this moment; returns the stamp. The block is written with
    one ``write`` and fsynced, and a torn last line (a crash mid-write) is dropped by the readers."""
    stamp = datetime.now(UTC).isoformat(timespec="microseconds")
    text = "".join(json.dumps({**r, RUN_KEY: stamp}, sort_keys=True, allow_nan=False) + "\n" for r in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        if fh.tell() and not _ends_with_newline(path):
            fh.write(b"\n")  # never glue a block to a torn line
        fh.write(text.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())
    return stamp


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def read_results(path: Path) -> list[dict[str, Any]]:
    """Every complete result line, oldest first ([] when there is no file)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    rows = []
    for line in lines:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn line
        if isinstance(obj, dict):
            rows.append(obj)
    return rows


def latest_results(path: Path) -> list[dict[str, Any]]:
    """The lines of the latest run (the last block; lines from before the history existed count as one)."""
    rows = read_results(path)
    if not rows:
        return []
    last = rows[-1].get(RUN_KEY)
    return [r for r in rows if r.get(RUN_KEY) == last]
