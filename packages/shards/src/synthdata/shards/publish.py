"""Publish a finished local shard directory to object storage in commit order.

A command that writes a whole directory at once (synth-filter) builds it in a local staging folder, with the
local atomicity rules, then publishes it: the remote ``dataset.json`` is removed first (the remote copy stops
being complete), every shard is uploaded (size checked) before its sidecar, shards of an earlier output that
the new one lacks are removed, the other files follow, and ``dataset.json`` comes last. A shard whose remote
sidecar already equals the local one (and whose tar there has the local size) is not uploaded again, so an
interrupted publish resumes cheaply: one listing and one batched read of the remote sidecars decide it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from synthdata.shards import storage
from synthdata.shards.layout import DATASET_JSON, SIDECAR_SUFFIX, shard_for_sidecar
from synthdata.shards.writer import upload_shard


@dataclass(slots=True)
class Published:
    """What :func:`publish_directory` did (file names relative to the directory)."""

    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def _upload_shards(local: Path, remote: str, present: dict[str, int], done: Published) -> set[str]:
    """Each complete local shard (tar, then sidecar), unless the remote one already matches: the same sidecar
    bytes and a tar of the same size in ``present`` (the remote listing). Remote sidecars are read in one
    batched request."""
    sidecars = [p for p in sorted(local.glob(f"*{SIDECAR_SUFFIX}")) if not p.name.startswith(".")]
    there = storage.read_many([storage.join(remote, p.name) for p in sidecars if p.name in present])
    names: set[str] = set()
    for sidecar in sidecars:
        tar = shard_for_sidecar(sidecar)
        names |= {sidecar.name, tar.name}
        same = there.get(storage.join(remote, sidecar.name)) == sidecar.read_bytes()
        if same and present.get(tar.name) == tar.stat().st_size:
            done.unchanged += [tar.name, sidecar.name]
            continue
        upload_shard(tar, storage.join(remote, tar.name))  # a stale sidecar is removed before the tar goes up
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
    present = storage.list_sizes(remote)  # one listing serves the skip test and the stale shards
    names = _upload_shards(local, remote, present, done)
    listed = sorted(present)
    stale = [n for n in listed if n.endswith(SIDECAR_SUFFIX)] + [n for n in listed if n.endswith(".tar")]
    for name in stale:
        if name not in names and storage.remove(storage.join(remote, name)):
            done.removed.append(name)
    files = sorted(p for p in local.rglob("*") if p.is_file() and not _hidden(p.relative_to(local)))
    rest = [p for p in files if p.name not in names and p.relative_to(local).as_posix() not in last]
    for path in rest + [local / name for name in last if (local / name).is_file()]:
        rel = path.relative_to(local).as_posix()
        storage.upload(path, storage.join(remote, *rel.split("/")))
        done.uploaded.append(rel)
    return done
