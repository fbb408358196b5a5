"""Atomic writes (temp file, fsync, rename), as :mod:`synthdata.shards._atomic` does them.

Kept here so that checking a finished run imports neither ``synthdata.shards`` nor, through it,
webdataset and torch: a rerun whose stages are all done should take about a second.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


def atomic_write_bytes(final: Path, data: bytes) -> None:
    """Write ``data`` to ``final`` through a hidden temp file beside it, renamed over it when complete."""
    final = Path(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
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
    with contextlib.suppress(OSError):
        fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_json(final: Path, obj: Any) -> None:
    """``obj`` as indented, key-sorted UTF-8 JSON, written atomically."""
    atomic_write_bytes(final, (json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode())
