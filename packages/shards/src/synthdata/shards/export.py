"""Write an ImageFolder (a folder per class, a file per sample) from any shard directory, resumably.

Class folders are ``NNN_<safe name>`` (:func:`~synthdata.shards.demo.imagefolder_dirname`), so sorted
folder names give the class indices; each sample becomes ``<safe key>.<ext>`` holding the image's original
bytes, written atomically, so a file that exists is complete and a rerun skips it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from synthdata.shards import storage
from synthdata.shards.atomic import TEMP_MARK, atomic_write_bytes, atomic_write_json, removed_on_failure
from synthdata.shards.dataset import ShardDataset, ShardEntry
from synthdata.shards.demo import imagefolder_dirname
from synthdata.shards.errors import OutputDirError, StorageError
from synthdata.shards.reader import iter_samples

EXPORT_MARKER = ".synthdata-export.json"
PRODUCER = "synth-shards export"
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_MAX_STEM = 200


def safe_file_stem(key: str) -> str:
    """A file name stem for a sample key: the key itself when it is plain (``[A-Za-z0-9_-]``, not starting
    with ``-``), else every other byte of its UTF-8 as ``~HH``. Distinct keys give distinct stems; an
    overlong one is cut and ends in ``=`` plus a digest of the key."""
    if key and key[0] != "-" and all(ch in _SAFE for ch in key) and len(key) <= _MAX_STEM:
        return key
    stem = "".join(
        chr(b) if chr(b) in _SAFE and not (i == 0 and b == 0x2D) else f"~{b:02x}"
        for i, b in enumerate(key.encode("utf-8"))
    )
    stem = stem or "~"
    if len(stem) > _MAX_STEM:
        stem = stem[:150] + "=" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return stem


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What :func:`export_imagefolder` did."""

    out: Path
    folders: tuple[str, ...]
    written: int
    skipped: int


def _check_out(out: Path, classes: list[str]) -> None:
    """Refuse an ``out`` that is a file, or a non-empty folder other than an earlier export of these classes."""
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"--imagefolder {out} exists and is not a directory; choose another")
    if not out.is_dir() or not any(out.iterdir()):
        return
    try:
        earlier = json.loads((out / EXPORT_MARKER).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError) as exc:
        raise OutputDirError(
            f"--imagefolder {out} is not empty and is not an earlier synth-shards export; choose an empty "
            "or new folder"
        ) from exc
    if not isinstance(earlier, dict) or earlier.get("classes") != classes:
        where = earlier.get("source") if isinstance(earlier, dict) else None
        raise OutputDirError(
            f"--imagefolder {out} holds an export of other classes (from {where}); choose an empty or new folder"
        )


def _clear_temps(folder: Path) -> None:
    for tmp in folder.glob(f".*{TEMP_MARK}*"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _targets(shard: ShardEntry, out: Path, folders: list[str]) -> list[Path] | None:
    """The files a shard exports to, when its sidecar says which (one image format), else None."""
    if len(shard.image_formats) != 1:
        return None
    ext = shard.image_formats[0]
    return [
        out / folders[c] / f"{safe_file_stem(k)}.{ext}"
        for k, c in zip(shard.keys, shard.classes, strict=True)
    ]


def export_imagefolder(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    on_shard: Callable[[str, int], None] | None = None,
) -> ExportResult:
    """Export every complete shard of ``source`` (a directory or directory URL) into the local ``out``.

    Needs the source's ``dataset.json`` (class names). Each shard is checked against its sidecar before any
    of its samples is written; a shard whose files all exist is not read again. ``on_shard(name, written)``
    is called after each shard.
    """
    if storage.is_url(out):
        raise StorageError(f"--imagefolder {os.fspath(out)}: export writes a local folder; give a local path")
    dataset = ShardDataset.open(source, flag="export", require_info=True)
    out = storage.local_path(out)
    classes = dataset.classes
    _check_out(out, classes)
    digits = max(3, len(str(len(classes) - 1)))
    folders = [imagefolder_dirname(i, c, digits=digits) for i, c in enumerate(classes)]
    written = skipped = 0
    with removed_on_failure(out):
        out.mkdir(parents=True, exist_ok=True)
        marker = {"producer": PRODUCER, "source": dataset.location, "classes": classes, "complete": False}
        atomic_write_json(out / EXPORT_MARKER, marker)
        for folder in folders:
            (out / folder).mkdir(exist_ok=True)
            _clear_temps(out / folder)
        for shard in dataset.shards:
            targets = _targets(shard, out, folders)
            if targets is not None and all(p.exists() for p in targets):
                skipped += len(targets)
                continue
            done = 0
            for sample in iter_samples([shard.location], decode=False):
                path = out / folders[sample.cls] / f"{safe_file_stem(sample.key)}.{sample.image_ext}"
                if path.exists():
                    skipped += 1
                    continue
                atomic_write_bytes(path, sample.image)  # type: ignore[arg-type]
                done += 1
            written += done
            if on_shard is not None:
                on_shard(shard.name, done)
        atomic_write_json(out / EXPORT_MARKER, {**marker, "complete": True, "samples": dataset.num_samples})
    return ExportResult(out, tuple(folders), written, skipped)
