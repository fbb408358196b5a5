"""File writes for the tuning outputs: atomic (a file is absent, the old version, or complete) through
:mod:`synthdata.shards.atomic`, creating the parent directory first; plus JSON Lines helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from synthdata.shards import atomic


def atomic_write_bytes(final: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``final`` atomically, creating its directory if needed."""
    return atomic.atomic_write_bytes(final, data, mkdir=True)


def atomic_write_text(final: str | os.PathLike[str], text: str) -> Path:
    return atomic.atomic_write_text(final, text, mkdir=True)


def atomic_write_json(final: str | os.PathLike[str], obj: Any) -> Path:
    """Indented, key-sorted JSON."""
    return atomic.atomic_write_json(final, obj, mkdir=True)


def jsonl_line(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def write_jsonl(final: str | os.PathLike[str], rows: list[Any]) -> Path:
    """Write ``rows`` as JSON Lines, atomically."""
    return atomic_write_text(final, "".join(jsonl_line(r) for r in rows))


def append_jsonl(final: str | os.PathLike[str], obj: Any) -> Path:
    """Append one JSON line: the old lines plus the new one are written to a temp file and renamed over
    ``final``, so a reader never sees a half-written line (last writer wins if two runs race)."""
    final = Path(final)
    old = final.read_bytes() if final.exists() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    return atomic_write_bytes(final, old + jsonl_line(obj).encode("utf-8"))
