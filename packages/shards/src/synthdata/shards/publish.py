"""Publish a finished local shard directory to object storage in commit order.

A command that writes a whole directory at once (synth-filter) builds it in a local staging folder, with the
local atomicity rules, then publishes it: the remote ``dataset.json`` is removed first (the remote copy stops
being complete), every shard is uploaded (size checked) before its sidecar, shards of an earlier output that
the new one lacks are removed, the other files follow, and ``dataset.json`` comes last. A shard whose remote
sidecar already equals the local one is not uploaded again, so an interrupted publish resumes cheaply.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from synthdata.shards import storage
from synthdata.shards.layout import DATASET_JSON, SIDECAR_SUFFIX


@dataclass(slots=True)
class Published:
    """What :func:`publish_directory` did (file names relative to the directory)."""

    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _listing(remote: str, pattern: str) -> list[str]:
    try:
        return storage.listdir(remote, pattern)
    except FileNotFoundError:  # an object store has no empty directories: nothing there yet
        return []


def _same_remote(local: Path, remote: str) -> bool:
    try:
        return storage.read_bytes(remote) == local.read_bytes()
    except FileNotFoundError:
        return False


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def _upload_shards(local: Path, remote: str, done: Published) -> set[str]:
    """Each complete local shard (tar, then sidecar), unless the remote sidecar already matches."""
    names: set[str] = set()
    for sidecar in sorted(local.glob(f"*{SIDECAR_SUFFIX}")):
        if sidecar.name.startswith("."):
            continue
        tar = sidecar.with_name(sidecar.name[: -len(SIDECAR_SUFFIX)] + ".tar")
        names |= {sidecar.name, tar.name}
        remote_sidecar = storage.join(remote, sidecar.name)
        if _same_remote(sidecar, remote_sidecar) and storage.exists(storage.join(remote, tar.name)):
            done.unchanged += [tar.name, sidecar.name]
            continue
        storage.remove(remote_sidecar)  # a stale sidecar must never vouch for the new tar
        storage.upload(tar, storage.join(remote, tar.name))
        storage.upload(sidecar, remote_sidecar)
        done.uploaded += [tar.name, sidecar.name]
    return names


def publish_directory(
    local: str | os.PathLike[str], remote: str, *, last: tuple[str, ...] = (DATASET_JSON,)
) -> Published:
    """Make ``remote`` (an ``s3://``/``gs://`` directory URL) hold exactly the files of ``local`` (hidden files
    and folders excepted), in commit order; ``last`` (default ``dataset.json``) is written after everything."""
    local = Path(local)
    storage.check_location(remote, flag="--out", write=True)
    done = Published()
    for name in last:
        if storage.remove(storage.join(remote, name)):
            done.removed.append(name)
    names = _upload_shards(local, remote, done)
    for stale in _listing(remote, f"*{SIDECAR_SUFFIX}") + _listing(remote, "*.tar"):
        if stale not in names and storage.remove(storage.join(remote, stale)):
            done.removed.append(stale)
    files = sorted(p for p in local.rglob("*") if p.is_file() and not _hidden(p.relative_to(local)))
    rest = [p for p in files if p.name not in names and p.relative_to(local).as_posix() not in last]
    for path in rest + [local / name for name in last if (local / name).is_file()]:
        rel = path.relative_to(local).as_posix()
        storage.upload(path, storage.join(remote, *rel.split("/")))
        done.uploaded.append(rel)
    return done
