"""Resume bookkeeping: which planned shards are complete, which must be redone."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from synthdata.shards.atomic import TEMP_MARK, is_temp_of, sha256_file
from synthdata.shards.layout import sidecar_path


@dataclass(frozen=True, slots=True)
class ResumePlan:
    """Planned shard names split into those already complete and those to (re)write."""

    complete: tuple[str, ...]
    todo: tuple[str, ...]
    removed: tuple[str, ...]


def read_sidecar(shard: Path) -> dict | None:
    """The parsed sidecar of ``shard``, or None if it is missing or unreadable."""
    try:
        obj = json.loads(sidecar_path(shard).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def is_complete(shard: Path, *, check_checksum: bool = True) -> bool:
    """A shard is complete when its tar and sidecar exist and size (and checksum) match the sidecar."""
    side = read_sidecar(shard)
    if side is None or side.get("shard") != shard.name:
        return False
    try:
        size = shard.stat().st_size
    except FileNotFoundError:
        return False
    if size != side.get("bytes"):
        return False
    return not check_checksum or sha256_file(shard) == side.get("sha256")


def plan_resume(
    directory: str | os.PathLike[str], planned: Iterable[str], *, check_checksum: bool = True
) -> ResumePlan:
    """Sort the planned shard names of this process into complete and to-do.

    Incomplete leftovers of the planned shards (a tar without a valid sidecar, a sidecar without its tar, and
    stale temp files of any writer) are deleted so that nothing half-written can be read later. Only files
    belonging to ``planned`` are touched, so ranks sharing a directory never remove each other's work.
    """
    directory = Path(directory)
    planned = list(planned)
    complete, todo, removed = [], [], []
    temps = [p for p in directory.glob(f".*{TEMP_MARK}*")] if directory.is_dir() else []
    for name in planned:
        shard = directory / name
        for tmp in temps:
            if is_temp_of(tmp, name) or is_temp_of(tmp, sidecar_path(shard).name):
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                    removed.append(tmp.name)
        if is_complete(shard, check_checksum=check_checksum):
            complete.append(name)
            continue
        todo.append(name)
        for leftover in (sidecar_path(shard), shard):  # sidecar first: it is what marks completeness
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
                removed.append(leftover.name)
    return ResumePlan(tuple(complete), tuple(todo), tuple(removed))
