"""Stage bookkeeping: a stage is finished if and only if its marker ``R/stages/<stage>.json`` exists.

The marker is written atomically, last, after every output of the stage is complete. It records the
stage's config (and its hash), fingerprints of its inputs and outputs, its timing and the tool command
lines it ran. On a rerun a stage is skipped when its marker is valid, its config hash matches and its
inputs still have the fingerprints recorded; see ``docs/pipeline.md``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from synthdata.tools._pipeline._io import atomic_write_json

MARKER_SCHEMA = "synthdata.pipeline-stage/1"
STAGES_DIR = "stages"

# Files whose bytes are hashed; anything else (images, tars) is fingerprinted by name, size and mtime.
# Shard tars need no hashing of their own: their sidecars (*.idx.json) carry each tar's SHA-256.
_CONTENT_SUFFIXES = (".json", ".jsonl", ".txt", ".csv")
_CONTENT_LIMIT = 64 << 20


@dataclass(slots=True)
class StageMarker:
    """What ``R/stages/<stage>.json`` holds."""

    stage: str
    config: dict[str, Any]
    config_hash: str
    inputs: dict[str, str]
    outputs: dict[str, str]
    started: str
    finished: str
    seconds: float
    commands: list[list[str]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    schema: str = MARKER_SCHEMA

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def marker_path(run_dir: Path, stage: str) -> Path:
    return Path(run_dir) / STAGES_DIR / f"{stage}.json"


def read_marker(run_dir: Path, stage: str) -> StageMarker | None:
    """The stage's marker, or None when it is absent or unreadable (an unreadable one counts as absent)."""
    path = marker_path(run_dir, stage)
    try:
        obj = json.loads(path.read_text("utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict) or obj.get("schema") != MARKER_SCHEMA or obj.get("stage") != stage:
        return None
    try:
        return StageMarker(**obj)
    except TypeError:
        return None


def write_marker(run_dir: Path, marker: StageMarker) -> Path:
    path = marker_path(run_dir, marker.stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, marker.to_json())
    return path


def remove_marker(run_dir: Path, stage: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        marker_path(run_dir, stage).unlink()


def fingerprint(path: str | os.PathLike[str]) -> str:
    """A cheap, stable digest of a file or directory tree ("absent" when missing).

    JSON, JSONL and text files are hashed by content; a shard tar beside its sidecar (``NAME.idx.json``,
    which carries the tar's SHA-256) by its size, so a shard directory is fingerprinted by content without
    reading the tars; other files by relative path, size and modification time. Hidden files (temp files
    ``.name.tmp-*``, the run lock) are ignored.
    """
    path = Path(path)
    if not path.exists():
        return "absent"
    digest = hashlib.sha256()
    if path.is_file():
        _add_file(digest, path, path.name)
        return digest.hexdigest()
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            full = Path(root) / name
            # A shard with its sidecar: the sidecar (hashed by content) holds the tar's SHA-256, so the
            # tar adds only its size; a byte-identical rewrite keeps the fingerprint.
            sealed = name.endswith(".tar") and f"{name[:-4]}.idx.json" in files
            _add_file(digest, full, full.relative_to(path).as_posix(), sealed=sealed)
    return digest.hexdigest()


def _add_file(digest: Any, path: Path, rel: str, *, sealed: bool = False) -> None:
    st = path.stat()
    digest.update(rel.encode("utf-8") + b"\0")
    if sealed:
        digest.update(f"{st.st_size}".encode())
    elif path.suffix in _CONTENT_SUFFIXES and st.st_size <= _CONTENT_LIMIT:
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    else:
        digest.update(f"{st.st_size}:{st.st_mtime_ns}".encode())


def remove_path(path: Path) -> None:
    """Delete a file or a directory tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
