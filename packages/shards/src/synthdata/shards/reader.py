"""Plain iteration over the complete shards of a directory, for tools (training uses :mod:`.pipeline`)."""

from __future__ import annotations

import json
import logging
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from synthdata.shards.atomic import sha256_file
from synthdata.shards.encoding import IMAGE_EXTENSIONS, decode_image
from synthdata.shards.errors import CorruptShardError
from synthdata.shards.layout import SIDECAR_SUFFIX, shard_for_sidecar
from synthdata.shards.resume import read_sidecar

log = logging.getLogger(__name__)

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


def iter_tar_groups(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Yield ``(key, {ext: bytes})`` for each consecutive group of members sharing a key."""
    key: str | None = None
    group: dict[str, bytes] = {}
    with tarfile.open(path, mode="r:") as tar:
        for member in tar:
            if not member.isfile():
                continue
            base = os.path.basename(member.name)
            member_key, dot, ext = base.partition(".")
            if not dot:
                raise CorruptShardError(f"{path.name}: member {member.name!r} has no extension")
            fh = tar.extractfile(member)
            data = fh.read() if fh else b""
            if len(data) != member.size:
                raise CorruptShardError(f"{path.name}: member {member.name!r} is truncated")
            if member_key != key:
                if key is not None:
                    yield key, group
                key, group = member_key, {}
            group[ext] = data
    if key is not None:
        yield key, group


def parse_sample(key: str, members: dict[str, bytes], shard: str, *, decode: bool = True) -> ReadSample:
    """Turn one member group into a :class:`ReadSample`, raising :class:`CorruptShardError` if it is partial."""
    image_ext = next((e for e in IMAGE_EXTENSIONS if e in members), None)
    missing = [
        m
        for m, ok in (("image", image_ext), ("cls", "cls" in members), ("json", "json" in members))
        if not ok
    ]
    if missing:
        raise CorruptShardError(f"{shard}: sample {key!r} is partial (missing {', '.join(missing)})")
    try:
        cls = int(members["cls"].decode())
        meta = json.loads(members["json"])
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
        key, image, cls, meta if isinstance(meta, dict) else {"value": meta}, shard, image_ext, extra
    )


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


def iter_samples(
    source: str | os.PathLike[str] | list[Path],
    *,
    decode: bool = True,
    on_error: OnError = "raise",
    verify_checksum: bool = True,
    stats: ReadStats | None = None,
) -> Iterator[ReadSample]:
    """Yield every sample of the complete shards in ``source`` (a directory or a list of shard paths).

    With ``verify_checksum`` (the default) each shard is checked against its sidecar before any of its samples
    is yielded, so a corrupt shard never contributes anything. ``on_error="raise"`` fails loudly on the first
    problem; ``"skip"`` logs a warning, skips the rest of that shard and counts it in ``stats``.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    stats = stats if stats is not None else ReadStats()
    shards = list_shards(source) if not isinstance(source, list) else [Path(p) for p in source]
    for shard in shards:
        try:
            if verify_checksum:
                check_shard(shard)
            for key, members in iter_tar_groups(shard):
                sample = parse_sample(key, members, shard.name, decode=decode)
                stats.samples += 1
                yield sample
        except (CorruptShardError, tarfile.TarError, OSError, EOFError) as exc:
            message = (
                str(exc) if isinstance(exc, CorruptShardError) else f"{shard.name}: unreadable tar ({exc})"
            )
            if on_error == "raise":
                raise CorruptShardError(message) from exc
            log.warning("skipping shard: %s", message)
            stats.skipped_shards.append(shard.name)
            stats.errors.append(message)
            continue
        stats.shards_read += 1
