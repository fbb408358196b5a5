"""Atomic file writes for the tuning outputs: a file is either absent, the old version, or complete."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any


def atomic_write_bytes(final: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to a hidden temp file beside ``final``, fsync it and rename it over ``final``."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return final


def atomic_write_text(final: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(final, text.encode("utf-8"))


def atomic_write_json(final: str | os.PathLike[str], obj: Any) -> Path:
    """Indented, key-sorted JSON."""
    return atomic_write_text(final, json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


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
