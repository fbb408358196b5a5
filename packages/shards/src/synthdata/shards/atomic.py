"""Atomic file writes and checksums: a file is either absent or complete, never half-written."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from synthdata.shards.errors import OutputDirError

TEMP_MARK = ".tmp-"


def temp_path_for(final: Path) -> Path:
    """A hidden temp name beside ``final``: same directory (so rename is atomic), never matched by ``*.tar``."""
    return final.with_name(f".{final.name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")


def is_temp_of(path: Path, final_name: str) -> bool:
    """Whether ``path`` is a temp file left by a writer of ``final_name``."""
    return path.name.startswith(f".{final_name}{TEMP_MARK}")


def ensure_writable_dir(directory: Path) -> Path:
    """Create ``directory`` if needed and check it is writable, with a clear error otherwise."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise OutputDirError(f"output path {directory} exists and is not a directory; choose another --out")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputDirError(
            f"cannot create output directory {directory}: {exc.strerror}; choose a writable path"
        ) from exc
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputDirError(
            f"output directory {directory} is not writable; fix its permissions or choose another"
        )
    return directory


@contextlib.contextmanager
def atomic_open(
    final: str | os.PathLike[str],
    mode: str = "wb",
    *,
    encoding: str | None = None,
    newline: str | None = None,
    mkdir: bool = False,
) -> Iterator[IO[Any]]:
    """Open a temp file beside ``final``; on success fsync and rename it over ``final``, on error delete it.

    ``mkdir=True`` creates the parent directory first; ``encoding``/``newline`` are for text modes.
    """
    final = Path(final)
    if mkdir:
        final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(final)
    try:
        fh = open(tmp, mode, encoding=encoding, newline=newline)  # noqa: SIM115 - closed below on every path
    except OSError as exc:
        raise OutputDirError(
            f"cannot write {final}: {exc.strerror}; check the directory exists and is writable"
        ) from exc
    try:
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(final.parent)


def atomic_write_bytes(final: str | os.PathLike[str], data: bytes, *, mkdir: bool = False) -> Path:
    """Write ``data`` to ``final`` atomically; return ``final`` as a Path."""
    final = Path(final)
    with atomic_open(final, "wb", mkdir=mkdir) as fh:
        fh.write(data)
    return final


def atomic_write_text(final: str | os.PathLike[str], text: str, *, mkdir: bool = False) -> Path:
    """Write ``text`` as UTF-8 to ``final`` atomically (no newline translation)."""
    return atomic_write_bytes(final, text.encode("utf-8"), mkdir=mkdir)


def atomic_write_json(
    final: str | os.PathLike[str],
    obj: Any,
    *,
    indent: int | None = 1,
    sort_keys: bool = True,
    ensure_ascii: bool = False,
    mkdir: bool = False,
) -> Path:
    """Write ``obj`` as JSON plus a final newline to ``final`` atomically (default: indented, key-sorted)."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, ensure_ascii=ensure_ascii) + "\n"
    return atomic_write_text(final, text, mkdir=mkdir)


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename inside ``directory`` durable (best effort: skipped where unsupported)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class HashingWriter:
    """A write-only file wrapper that counts bytes and hashes them as they pass."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.bytes_written = 0
        self.discarded = False

    def discard(self) -> None:
        """Swallow later writes (e.g. a tar stream's close on garbage collection after an abort)."""
        self.discarded = True

    def write(self, data: bytes) -> int:
        if self.discarded:
            return len(data)
        self.sha256.update(data)
        self.bytes_written += len(data)
        return self._fh.write(data)

    def tell(self) -> int:
        return self.bytes_written

    def flush(self) -> None:
        self._fh.flush()


class HashingReader:
    """A read-only stream wrapper that hashes and counts the bytes read through it (one pass: size + SHA-256)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self.sha256.update(data)
        self.bytes_read += len(data)
        return data

    def drain(self, chunk: int = 1 << 20) -> None:
        """Read the rest of the stream (what a tar reader leaves after the end-of-archive blocks)."""
        while self.read(chunk):
            pass


def first_missing_dir(path: str | os.PathLike[str]) -> Path | None:
    """The topmost directory on the way to ``path`` (itself included) that does not exist yet, else None."""
    path = Path(path)
    return next((p for p in reversed([path, *path.parents]) if not p.exists()), None)


def holds_a_file(root: Path) -> bool:
    """Whether ``root`` or any directory below it holds a file."""
    return any(p.is_file() for p in root.rglob("*"))


@contextlib.contextmanager
def removed_on_failure(
    path: str | os.PathLike[str], *, keep: Callable[[Path], bool] = holds_a_file
) -> Iterator[None]:
    """Run the body; if it raises, remove the directories it created on the way to ``path`` unless
    ``keep(topmost_created)`` (default: it holds a file, i.e. something a rerun may resume from).

    A directory that existed before is never removed, so a failed run leaves ``path`` as it found it or
    holding its partial work, never as an empty leftover.
    """
    created = first_missing_dir(path)
    try:
        yield
    except BaseException:
        if created is not None and created.exists() and not keep(created):
            shutil.rmtree(created, ignore_errors=True)
        raise
