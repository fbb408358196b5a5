"""The run's output, a local folder or a directory URL (``s3://``, ``gs://``): preparing it, the plan file,
resume and completeness, pruning an earlier plan's shards, and the files written last.

Locally every file is written atomically (temp file, fsync, rename). An object store has no rename, so there
the order of writes makes files complete: a shard is written to a local temp folder, uploaded and checked,
and only then its sidecar is uploaded (``synthdata.shards.write_shard``); the interop files and
``dataset.json`` come after the last sidecar. A PUT is atomic (a reader sees the whole object or none), so
every rule below holds on both, and no step needs a lock or a rename: concurrent writers of one file (two
ranks finishing together) write the same bytes.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from typing import Any

from synthdata.diffusion.runner._plan import PlannedShard
from synthdata.diffusion.runner.errors import GenerateError
from synthdata.shards import (
    DATASET_JSON,
    DatasetInfo,
    DatasetInfoError,
    OutputDirError,
    ShardDataset,
    plan_resume,
    storage,
    write_dataset_json,
    write_interop_files,
)
from synthdata.shards.dataset_info import parse_dataset_json
from synthdata.shards.identity import compare_identity
from synthdata.shards.interop import INTEROP_FILES, WRITTEN_BY
from synthdata.shards.resume import complete_sidecars, sidecar_name

log = logging.getLogger(__name__)

PLAN_FILE = ".synth-generate.json"
PLAN_SCHEMA = "synthdata.generate-plan/1"
PRODUCER = "synth-generate"


def check_location(out: str) -> None:
    """Refuse, before anything is made, an ``--out`` that cannot hold the shards: a URL this build cannot
    write (``http://``, an unknown scheme, a missing backend) or a local file."""
    storage.check_location(out, flag="--out", write=True)
    if not storage.is_url(out):
        path = storage.local_path(out)
        if path.exists() and not path.is_dir():
            raise OutputDirError(f"--out {out} exists and is not a directory; choose another --out")


def prepare(out: str) -> None:
    """Create a local ``--out`` and check it is writable (object stores have no folders to create; a bucket
    that cannot be written fails at the plan file, the first write)."""
    if storage.is_url(out):
        return
    path = storage.local_path(out)
    check_location(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputDirError(f"cannot create --out {out}: {exc.strerror}; choose a writable path") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputDirError(f"--out {out} is not writable; fix its permissions or choose another directory")


def dir_name(out: str) -> str:
    """The output folder's name (the data set's default name)."""
    return storage.basename(out) if storage.is_url(out) else storage.local_path(out).name


# ------------------------------------------------------------------------------------------ the plan file
def _recorded_fingerprint(location: str) -> dict[str, Any] | None:
    try:
        data = storage.read_bytes(location)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        fingerprint = json.loads(data)["fingerprint"]
    except (ValueError, KeyError, TypeError):
        fingerprint = None
    if not isinstance(fingerprint, dict):
        log.warning("%s is unreadable; replacing it", location)
        return None
    return fingerprint


def check_plan_file(out: str, fingerprint: dict[str, Any]) -> None:
    """Refuse to resume into a directory generated with other image settings; record them for next time."""
    location = storage.join(out, PLAN_FILE)
    check = compare_identity(_recorded_fingerprint(location), fingerprint)
    if check.status == "changed":
        raise GenerateError(
            f"--out {out} holds shards generated with other settings ({check.describe()}); "
            "rerun with the original settings to resume, or choose a new --out"
        )
    if check.status == "new":
        record = {"schema": PLAN_SCHEMA, "producer": PRODUCER, "fingerprint": fingerprint}
        try:
            storage.write_json(location, record)
        except OSError as exc:
            if isinstance(exc, OutputDirError):
                raise
            raise OutputDirError(f"--out {out}: cannot write {PLAN_FILE} ({exc}); check the location") from exc


# ------------------------------------------------------------------------------------------ dataset.json
def read_info(out: str) -> tuple[bool, DatasetInfo | None]:
    """(whether ``dataset.json`` exists, its parsed content or None when it is invalid)."""
    location = storage.join(out, DATASET_JSON)
    try:
        text = storage.read_text(location)
    except (FileNotFoundError, NotADirectoryError):  # a parent that is a file: prepare() says so
        return False, None
    try:
        return True, parse_dataset_json(text, location)
    except DatasetInfoError:
        return True, None


def check_producer(out: str, info: DatasetInfo | None) -> None:
    """Refuse a directory whose ``dataset.json`` (``info``, from :func:`read_info`) another tool wrote
    (before anything is written to it)."""
    if info is not None and info.producer != PRODUCER:
        raise GenerateError(
            f"--out {out} holds a dataset made by {info.producer or 'another tool'}; choose a new --out"
        )


def _remove_interop_files(out: str) -> None:
    """Our timm/wids/Hugging Face files (those carrying the mark); a same-named file of someone else stays."""
    for name in INTEROP_FILES:
        location = storage.join(out, name)
        try:
            ours = WRITTEN_BY.encode() in storage.read_bytes(location)
        except FileNotFoundError:
            continue
        if ours:
            storage.remove(location)


def drop_stale_dataset_json(
    out: str, existing: tuple[bool, DatasetInfo | None], n_items: int, fingerprint: dict[str, Any]
) -> None:
    """A ``dataset.json`` describing another plan (fewer or more items) is removed while this one runs, so
    the directory never claims to be complete for the wrong plan; so are the interop files, which list the
    shards of that plan for timm, wids and Hugging Face. ``existing``: :func:`read_info` at the run's start."""
    present, info = existing
    if not present:
        return
    if info is None or info.config.get("items") != n_items or info.config.get("fingerprint") != fingerprint:
        storage.remove(storage.join(out, DATASET_JSON))
        _remove_interop_files(out)


# ------------------------------------------------------------------------------------------ shards
def _remove_shard(out: str, name: str) -> None:
    for file in (sidecar_name(name), name):  # sidecar first: it is what marks completeness
        storage.remove(storage.join(out, file))


def resume(out: str, mine: Sequence[PlannedShard]) -> tuple[set[str], list[PlannedShard]]:
    """(names of this rank's complete shards, the shards to write); a complete shard from another plan
    (e.g. more images per prompt) is removed and redone.

    Locally, complete shards are checked against their checksums (``plan_resume``); on a URL, one listing
    and one batched read of the sidecars decide (a shard is complete when its sidecar is there and its tar
    has the recorded size: checking checksums would download every shard). A tar without its sidecar (a
    killed upload) is simply overwritten."""
    complete = set(plan_resume(out, [s.name for s in mine]).complete)
    done = [s for s in mine if s.name in complete]
    sides = storage.read_many([storage.join(out, sidecar_name(s.name)) for s in done])
    for s in done:
        data = sides[storage.join(out, sidecar_name(s.name))]
        try:
            keys = json.loads(data).get("keys") if data is not None else None
        except (ValueError, AttributeError):
            keys = None
        if keys != s.keys:
            log.info("%s holds other keys than planned; redoing it", s.name)
            _remove_shard(out, s.name)
            complete.discard(s.name)
    return complete, [s for s in mine if s.name not in complete]


def all_complete(out: str, shards: Sequence[PlannedShard]) -> bool:
    """Every planned shard has its sidecar with the planned keys and a tar of the recorded size (one
    listing and one batched read of the sidecars on a URL)."""
    sides = complete_sidecars(out, [s.name for s in shards])
    return all(s.name in sides and sides[s.name].get("keys") == s.keys for s in shards)


def prune_beyond(out: str, prefix: str, n_shards: int) -> list[str]:
    """Remove shards of an earlier, larger plan (e.g. before ``--images-per-prompt`` was lowered); only
    names of this prefix's planned form are looked at (interop files, summaries and the rest stay)."""
    pattern = re.compile(rf"^{re.escape(prefix)}-000-(\d{{6,}})(\.tar|\.idx\.json)$")
    names = sorted(storage.listdir(out), key=lambda n: not n.endswith(".idx.json"))  # sidecars first
    removed = []
    for name in names:
        m = pattern.match(name)
        if m and int(m.group(1)) >= n_shards and storage.remove(storage.join(out, name)):
            removed.append(name)
    return removed


# ------------------------------------------------------------------------------------------ the last files
def _same_run(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.get("fingerprint") == b.get("fingerprint") and a.get("items") == b.get("items")


def finish_dataset(out: str, info: DatasetInfo, prefix: str, n_shards: int) -> None:
    """Once every planned shard is complete: remove an earlier plan's extra shards, then write the interop
    files (timm ``_info.json``, the wids index, the Hugging Face card) and, last, ``dataset.json``. Nothing
    is written when ``dataset.json`` already describes this exact run (another rank, or an earlier run,
    wrote it)."""
    removed = prune_beyond(out, prefix, n_shards)
    if removed:
        log.info("removed %d files of an earlier, larger plan: %s", len(removed), ", ".join(removed[:4]))
    _, old = read_info(out)  # read again: another rank may have written it since the start
    if old is not None and old.producer == PRODUCER and _same_run(old.config, info.config):
        return
    interop = write_interop_files(
        ShardDataset.open(out, flag="--out", read_info=False), classes=info.classes, name=info.name
    )
    for kept in interop.kept:
        log.info("kept %s: synthdata did not write it", kept)
    if storage.is_url(out):
        obj = info.to_json()
        DatasetInfo.from_json(obj, "dataset info")  # the checks a reader makes
        storage.write_json(storage.join(out, DATASET_JSON), obj)
    else:
        write_dataset_json(storage.local_path(out), info)
    log.info("all %d shards complete; wrote %s", n_shards, storage.join(out, DATASET_JSON))
