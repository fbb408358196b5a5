"""Resume bookkeeping: which planned shards are complete, which must be redone (local or remote)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from synthdata.shards import storage
from synthdata.shards.atomic import TEMP_MARK, is_temp_of, sha256_file
from synthdata.shards.layout import SIDECAR_SUFFIX, sidecar_location, sidecar_path


@dataclass(frozen=True, slots=True)
class ResumePlan:
    """Planned shard names split into those already complete and those to (re)write."""

    complete: tuple[str, ...]
    todo: tuple[str, ...]
    removed: tuple[str, ...]


def sidecar_name(shard_name: str) -> str:
    """``NAME.idx.json`` for ``NAME.tar``."""
    return shard_name[: -len(".tar")] + SIDECAR_SUFFIX


def _parse_sidecar(data: bytes | None) -> dict | None:
    if data is None:
        return None
    try:
        obj = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def read_sidecar(shard: str | os.PathLike[str]) -> dict | None:
    """The parsed sidecar of ``shard`` (a path, ``file://`` or a URL), or None if it is missing or unreadable."""
    try:
        return _parse_sidecar(storage.read_bytes(sidecar_location(shard)))
    except FileNotFoundError:
        return None


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


def complete_sidecars(location: str | os.PathLike[str], planned: Iterable[str]) -> dict[str, dict]:
    """``{name: sidecar}`` of the planned shards whose sidecar names its shard and whose tar exists with the
    size the sidecar records (no checksum: that would read every tar). For a URL this is one listing and
    one batched read of the sidecars found, never a request per planned shard."""
    return _scan(os.fspath(location), list(planned))[1]


def _scan(location: str, names: list[str]) -> tuple[dict[str, int], dict[str, dict]]:
    """(the directory's ``{file: size}``, the complete sidecars of ``names``)."""
    sizes = storage.list_sizes(location)
    found = [n for n in names if sidecar_name(n) in sizes and n in sizes]
    blobs = storage.read_many([storage.join(location, sidecar_name(n)) for n in found])
    done: dict[str, dict] = {}
    for name in found:
        side = _parse_sidecar(blobs[storage.join(location, sidecar_name(name))])
        if side is not None and side.get("shard") == name and side.get("bytes") == sizes[name]:
            done[name] = side
    return sizes, done


def plan_resume(
    directory: str | os.PathLike[str], planned: Iterable[str], *, check_checksum: bool = True
) -> ResumePlan:
    """Sort the planned shard names of this process into complete and to-do.

    Incomplete leftovers of the planned shards (a tar without a valid sidecar, a sidecar without its tar, and
    stale temp files of any writer) are deleted so that nothing half-written can be read later. Only files
    belonging to ``planned`` are touched, so ranks sharing a directory never remove each other's work.

    A directory URL is read with one listing and one batched read of the sidecars; a remote shard is
    complete when its sidecar is there and its tar has the recorded size (``check_checksum`` applies to
    local shards only: checking a remote one would download it). Only the sidecars of the shards to redo
    are removed (so none vouches for a tar about to be replaced); their tars are overwritten by the rewrite.
    """
    if storage.is_url(directory):
        return _plan_resume_remote(os.fspath(directory), list(planned))
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


def _plan_resume_remote(location: str, planned: list[str]) -> ResumePlan:
    sizes, done = _scan(location, planned)
    removed = []
    for name in planned:
        if name not in done and sidecar_name(name) in sizes:
            storage.remove(storage.join(location, sidecar_name(name)))
            removed.append(sidecar_name(name))
    todo = tuple(n for n in planned if n not in done)
    return ResumePlan(tuple(n for n in planned if n in done), todo, tuple(removed))
