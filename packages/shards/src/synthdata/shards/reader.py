"""Plain iteration over the complete shards of a directory, for tools (training uses :mod:`.pipeline`)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from PIL import Image

from synthdata.shards import storage
from synthdata.shards.atomic import HashingReader, sha256_file
from synthdata.shards.encoding import IMAGE_EXTENSIONS, decode_image
from synthdata.shards.errors import CorruptShardError
from synthdata.shards.layout import SIDECAR_SUFFIX, shard_for_sidecar
from synthdata.shards.layout import sidecar_location as sidecar_location  # re-exported: tune imports it here
from synthdata.shards.resume import read_sidecar

log = logging.getLogger(__name__)

SPOOL_BYTES = 64 << 20  # a remote shard up to this size is checked in memory, a larger one in a temp file

OnError = Literal["raise", "skip"]


@dataclass(slots=True)
class ReadSample:
    """A decoded sample: ``image`` is an RGB PIL image (or the raw bytes when ``decode=False``)."""

    key: str
    image: Image.Image | bytes
    cls: int
    meta: dict[str, Any]
    shard: str
    image_ext: str
    extra: dict[str, bytes] = field(default_factory=dict)


@dataclass(slots=True)
class ReadStats:
    """Counts of what a reader skipped (with ``on_error="skip"``)."""

    shards_read: int = 0
    samples: int = 0
    skipped_shards: list[str] = field(default_factory=list)
    skipped_samples: int = 0
    errors: list[str] = field(default_factory=list)


def list_shards(directory: str | os.PathLike[str]) -> list[Path]:
    """The shards of ``directory`` that have a sidecar, in name order. Shards without one are incomplete."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"shard directory {directory} does not exist")
    return sorted(
        shard_for_sidecar(p) for p in directory.glob(f"*{SIDECAR_SUFFIX}") if not p.name.startswith(".")
    )


def shard_locations(source: str | os.PathLike[str]) -> list[str]:
    """Like :func:`list_shards` for a local directory or a directory URL: each complete shard's location."""
    if not storage.is_url(source):
        return [str(p) for p in list_shards(storage.local_path(source))]
    text = storage.check_location(source, flag="shards")
    if not storage.isdir(text):
        raise FileNotFoundError(f"shard directory {text} does not exist")
    names = [n for n in storage.listdir(text, f"*{SIDECAR_SUFFIX}") if not n.startswith(".")]
    return [storage.join(text, n[: -len(SIDECAR_SUFFIX)] + ".tar") for n in names]


def _group_members(tar: tarfile.TarFile, name: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    key: str | None = None
    group: dict[str, bytes] = {}
    for member in tar:
        if not member.isfile():
            continue
        base = os.path.basename(member.name)
        member_key, dot, ext = base.partition(".")
        if not dot:
            raise CorruptShardError(f"{name}: member {member.name!r} has no extension")
        fh = tar.extractfile(member)
        data = fh.read() if fh else b""
        if len(data) != member.size:
            raise CorruptShardError(f"{name}: member {member.name!r} is truncated")
        if member_key != key:
            if key is not None:
                yield key, group
            key, group = member_key, {}
        group[ext] = data
    if key is not None:
        yield key, group


def iter_tar_groups(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Yield ``(key, {ext: bytes})`` for each consecutive group of members sharing a key."""
    with tarfile.open(path, mode="r:") as tar:
        yield from _group_members(tar, Path(path).name)


def iter_tar_stream(fileobj: IO[bytes], name: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """:func:`iter_tar_groups` over a stream read once, front to back (a URL, a hashing wrapper)."""
    with tarfile.open(fileobj=fileobj, mode="r|") as tar:
        yield from _group_members(tar, name)


def parse_sample(
    key: str, members: dict[str, bytes], shard: str, *, decode: bool = True, cls: int | None = None
) -> ReadSample:
    """Turn one member group into a :class:`ReadSample`, raising :class:`CorruptShardError` if it is partial.

    A sample needs an image and a class: its ``cls`` member, else ``cls`` (the class its sidecar lists, for
    shards indexed from a ``json`` field). The ``json`` member is optional (``meta`` is ``{}`` without one).
    """
    image_ext = next((e for e in IMAGE_EXTENSIONS if e in members), None)
    has_cls = "cls" in members or cls is not None
    missing = [m for m, ok in (("image", image_ext), ("cls", has_cls)) if not ok]
    if missing:
        raise CorruptShardError(f"{shard}: sample {key!r} is partial (missing {', '.join(missing)})")
    try:
        label = int(members["cls"].decode()) if "cls" in members else int(cls)  # type: ignore[arg-type]
        meta = json.loads(members["json"]) if "json" in members else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptShardError(f"{shard}: sample {key!r} has an unreadable cls/json member ({exc})") from exc
    try:
        image = decode_image(members[image_ext]) if decode else members[image_ext]
    except Exception as exc:  # PIL raises many types for broken data
        raise CorruptShardError(
            f"{shard}: sample {key!r} has an undecodable {image_ext} image ({exc})"
        ) from exc
    extra = {k: v for k, v in members.items() if k not in (image_ext, "cls", "json")}
    return ReadSample(
        key, image, label, meta if isinstance(meta, dict) else {"value": meta}, shard, image_ext, extra
    )


def sidecar_label(side: dict | None, index: int, key: str) -> int | None:
    """The class the sidecar lists for the ``index``-th sample, for shards whose labels live in the sidecar.

    Only sidecars whose ``labels`` field names another source than the ``cls`` member (written by
    ``synth-shards index --label-field``) give one, so a shard that should have ``cls`` members still fails
    on a sample without one. None when the key at that position differs.
    """
    if not side or side.get("labels", "cls") == "cls":
        return None
    keys, classes = side.get("keys"), side.get("classes")
    if not isinstance(keys, list) or not isinstance(classes, list) or index >= min(len(keys), len(classes)):
        return None
    label = classes[index]
    return label if keys[index] == key and isinstance(label, int) and not isinstance(label, bool) else None


def check_shard(path: Path) -> dict:
    """Compare a shard with its sidecar (size and sha256); return the sidecar or raise CorruptShardError."""
    side = read_sidecar(path)
    if side is None:
        raise CorruptShardError(f"{path.name}: sidecar index missing or unreadable; the shard is incomplete")
    if not path.exists():
        raise CorruptShardError(f"{path.name}: listed by its sidecar but the tar file is missing")
    if path.stat().st_size != side.get("bytes") or sha256_file(path) != side.get("sha256"):
        raise CorruptShardError(f"{path.name}: checksum mismatch with its sidecar (corrupt or truncated)")
    return side


@contextlib.contextmanager
def _fetched(url: str, side: dict | None, verify_checksum: bool) -> Iterator[IO[bytes]]:
    """A remote shard copied once into a spooled temp file, checked against its sidecar before any read."""
    name = storage.basename(url)
    if verify_checksum and side is None:
        raise CorruptShardError(f"{name}: sidecar index missing or unreadable; the shard is incomplete")
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        try:
            with storage.open_read(url) as raw:
                reader = HashingReader(raw)
                while block := reader.read(1 << 20):
                    spool.write(block)
        except FileNotFoundError as exc:
            raise CorruptShardError(f"{name}: listed by its sidecar but the tar file is missing") from exc
        if verify_checksum and (
            reader.bytes_read != side.get("bytes") or reader.sha256.hexdigest() != side.get("sha256")  # type: ignore[union-attr]
        ):
            raise CorruptShardError(f"{name}: checksum mismatch with its sidecar (corrupt or truncated)")
        spool.seek(0)
        yield spool


def _shard_samples(shard: str | Path, decode: bool, verify_checksum: bool) -> Iterator[ReadSample]:
    if isinstance(shard, Path) or not storage.is_url(shard):
        path = storage.local_path(shard)
        side = check_shard(path) if verify_checksum else read_sidecar(path)
        for i, (key, members) in enumerate(iter_tar_groups(path)):
            yield parse_sample(key, members, path.name, decode=decode, cls=sidecar_label(side, i, key))
        return
    side, name = read_sidecar(shard), storage.basename(shard)
    with _fetched(shard, side, verify_checksum) as spool, tarfile.open(fileobj=spool, mode="r:") as tar:
        for i, (key, members) in enumerate(_group_members(tar, name)):
            yield parse_sample(key, members, name, decode=decode, cls=sidecar_label(side, i, key))


def iter_samples(
    source: str | os.PathLike[str] | list[Path] | list[str],
    *,
    decode: bool = True,
    on_error: OnError = "raise",
    verify_checksum: bool = True,
    stats: ReadStats | None = None,
) -> Iterator[ReadSample]:
    """Yield every sample of the complete shards in ``source`` (a directory, a directory URL, or a list of
    shard paths or URLs).

    With ``verify_checksum`` (the default) each shard is checked against its sidecar before any of its samples
    is yielded, so a corrupt shard never contributes anything (a remote shard is fetched once into a spooled
    temp file for that). ``on_error="raise"`` fails loudly on the first problem; ``"skip"`` logs a warning,
    skips the rest of that shard and counts it in ``stats``.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    stats = stats if stats is not None else ReadStats()
    shards: list[str | Path]
    if isinstance(source, list):
        shards = [p if isinstance(p, str) and storage.is_url(p) else Path(p) for p in source]
    elif storage.is_url(source):
        shards = list(shard_locations(source))
    else:
        shards = list(list_shards(source))
    for shard in shards:
        name = shard.name if isinstance(shard, Path) else storage.basename(shard)
        try:
            for sample in _shard_samples(shard, decode, verify_checksum):
                stats.samples += 1
                yield sample
        except (CorruptShardError, tarfile.TarError, OSError, EOFError) as exc:
            message = str(exc) if isinstance(exc, CorruptShardError) else f"{name}: unreadable tar ({exc})"
            if on_error == "raise":
                raise CorruptShardError(message) from exc
            log.warning("skipping shard: %s", message)
            stats.skipped_shards.append(name)
            stats.errors.append(message)
            continue
        stats.shards_read += 1
