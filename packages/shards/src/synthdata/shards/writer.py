"""Writing samples into WebDataset tar shards that are either complete (with their sidecar) or absent."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import webdataset as wds

from synthdata.shards import storage
from synthdata.shards.atomic import HashingWriter, atomic_write_json, ensure_writable_dir, temp_path_for
from synthdata.shards.encoding import (
    encode_extra,
    encode_image,
    encode_metadata,
    normalise_format,
    validate_class_index,
    validate_key,
)
from synthdata.shards.errors import OutputDirError, SampleError
from synthdata.shards.layout import shard_name, sidecar_location, sidecar_path

SIDECAR_SCHEMA = "synthdata.shard-index/1"
TAR_MTIME = 0  # fixed so the same samples always give byte-identical shards


@dataclass(slots=True)
class Sample:
    """One sample: a stable key, an image (uint8 array, PIL image or encoded bytes), a class index, metadata.

    ``extra`` holds additional members, e.g. ``{"scores.json": {...}}``.
    """

    key: str
    image: Any
    cls: int
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """What a finished shard holds (mirrors its sidecar); ``path`` is a URL string for a remote shard."""

    path: Path | str
    count: int
    sha256: str
    nbytes: int
    keys: tuple[str, ...]


def _as_sample(sample: Sample | Mapping[str, Any]) -> Sample:
    if isinstance(sample, Sample):
        return sample
    missing = [f for f in ("key", "image", "cls") if f not in sample]
    if missing:
        raise SampleError(f"sample {sample.get('key', '?')!r} lacks required field(s) {', '.join(missing)}")
    return Sample(
        sample["key"], sample["image"], sample["cls"], sample.get("meta") or {}, sample.get("extra") or {}
    )


class _OpenShard:
    """One shard being written to a temp file; published by :meth:`finish`, removed by :meth:`abort`."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = temp_path_for(final)
        try:
            self._fh = open(self.tmp, "wb")  # noqa: SIM115 - closed in finish/abort
        except OSError as exc:
            raise OutputDirError(
                f"cannot write shard {final}: {exc.strerror}; check the output directory"
            ) from exc
        self._hashing = HashingWriter(self._fh)
        self._tar = wds.TarWriter(
            self._hashing, user="synthdata", group="synthdata", encoder=False, mtime=TAR_MTIME
        )
        self.keys: list[str] = []
        self.classes: list[int] = []
        self.image_formats: set[str] = set()

    @property
    def nbytes(self) -> int:
        return self._hashing.bytes_written

    def add(self, members: dict[str, bytes], key: str, cls: int, fmt: str) -> None:
        self._tar.write({"__key__": key, **members})
        self.keys.append(key)
        self.classes.append(cls)
        self.image_formats.add(fmt)

    def finish(self) -> ShardInfo:
        self._tar.close()  # writes the end-of-archive blocks through the hashing wrapper
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self.tmp, self.final)
        info = ShardInfo(
            self.final, len(self.keys), self._hashing.sha256.hexdigest(), self.nbytes, tuple(self.keys)
        )
        # The sidecar is written last: a shard without one is incomplete by contract.
        atomic_write_json(
            sidecar_path(self.final),
            {
                "schema": SIDECAR_SCHEMA,
                "shard": self.final.name,
                "count": info.count,
                "sha256": info.sha256,
                "bytes": info.nbytes,
                "keys": list(self.keys),
                "classes": self.classes,
                "image_formats": sorted(self.image_formats),
            },
        )
        return info

    def abort(self) -> None:
        self._hashing.discard()
        with contextlib.suppress(Exception):
            self._fh.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


class ShardWriter:
    """Write samples into ``PREFIX-{rank:03d}-{index:06d}.tar`` shards bounded by sample count and/or bytes.

    Use as a context manager. Each shard is written under a hidden temp name, renamed when complete, and
    followed by its sidecar index. If the block raises, the shard in progress is discarded; finished shards
    stay valid. Keys must be unique within the writer.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        *,
        prefix: str = "shard",
        rank: int = 0,
        start_index: int = 0,
        max_count: int | None = 1000,
        max_bytes: int | None = None,
        image_format: str = "png",
        quality: int | None = None,
    ) -> None:
        if max_count is not None and max_count < 1:
            raise ValueError(f"max_count must be >= 1, got {max_count}")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        self.out_dir = ensure_writable_dir(Path(out_dir))
        self.prefix, self.rank, self.next_index = prefix, rank, start_index
        shard_name(prefix, rank, start_index)  # validates the prefix early
        self.max_count, self.max_bytes = max_count, max_bytes
        self.image_format = normalise_format(image_format)
        self.quality = quality
        self.shards: list[ShardInfo] = []
        self._open: _OpenShard | None = None
        self._seen: set[str] = set()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, sample: Sample | Mapping[str, Any]) -> None:
        """Validate, encode and append one sample, starting a new shard when a bound is reached."""
        members, key, cls, fmt = encode_sample(_as_sample(sample), self.image_format, self.quality)
        if key in self._seen:
            raise SampleError(f"duplicate sample key {key!r}; keys must be unique in a dataset")
        size = sum(len(v) for v in members.values())
        shard = self._open
        if (
            shard is not None
            and shard.keys
            and (
                (self.max_count is not None and len(shard.keys) >= self.max_count)
                or (self.max_bytes is not None and shard.nbytes + size + 1536 * len(members) > self.max_bytes)
            )
        ):
            self._finish()
            shard = None
        if shard is None:
            shard = self._open = _OpenShard(
                self.out_dir / shard_name(self.prefix, self.rank, self.next_index)
            )
            self.next_index += 1
        shard.add(members, key, cls, fmt)
        self._seen.add(key)

    def write_all(self, samples: Iterable[Sample | Mapping[str, Any]]) -> None:
        for sample in samples:
            self.write(sample)

    def _finish(self) -> None:
        if self._open is not None:
            shard, self._open = self._open, None
            try:
                self.shards.append(shard.finish())
            except BaseException:
                shard.abort()
                raise

    def close(self) -> list[ShardInfo]:
        """Publish the shard in progress and return every shard written."""
        self._finish()
        return self.shards

    def abort(self) -> None:
        """Discard the shard in progress (finished shards are kept)."""
        if self._open is not None:
            self._open.abort()
            self._open = None


def encode_sample(
    sample: Sample, image_format: str, quality: int | None
) -> tuple[dict[str, bytes], str, int, str]:
    """Validate a sample and encode its members; returns (members, key, class index, image extension)."""
    key = validate_key(sample.key)
    cls = validate_class_index(sample.cls, key)
    if sample.image is None:
        raise SampleError(f"sample {key!r} has no image")
    data, fmt = encode_image(sample.image, image_format, quality, key)
    members = {fmt: data, "cls": str(cls).encode(), "json": encode_metadata(sample.meta, key)}
    for name, value in sample.extra.items():
        members[name] = encode_extra(name, value, key)
    return members, key, cls, fmt


def write_shard(
    path: str | os.PathLike[str],
    samples: Iterable[Sample | Mapping[str, Any]],
    *,
    image_format: str = "png",
    quality: int | None = None,
) -> ShardInfo:
    """Write exactly ``samples`` into the one shard at ``path`` (a planned shard id), atomically.

    Used by planned jobs (generation) whose shards are fixed up front, so that a rerun redoes precisely
    the incomplete ones. Any existing sidecar for ``path`` is removed first, so a crash mid-way leaves the
    shard incomplete rather than stale-but-complete.

    ``path`` may be a URL (``s3://``, ``gs://``): the shard is written to a temp folder under
    :func:`storage.default_staging_root` (removed afterwards), then published with :func:`upload_shard`
    (``ShardInfo.path`` is then the URL, as a string).
    """
    if storage.is_url(path):
        staging = storage.default_staging_root()
        staging.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="shard-", dir=staging) as tmp:
            local = write_shard(
                Path(tmp) / storage.basename(path), samples, image_format=image_format, quality=quality
            )
            upload_shard(local.path, os.fspath(path))
        return dataclasses.replace(local, path=os.fspath(path))
    final = Path(path)
    ensure_writable_dir(final.parent)
    fmt = normalise_format(image_format)
    with contextlib.suppress(FileNotFoundError):
        sidecar_path(final).unlink()
    shard = _OpenShard(final)
    try:
        seen: set[str] = set()
        for sample in samples:
            members, key, cls, ext = encode_sample(_as_sample(sample), fmt, quality)
            if key in seen:
                raise SampleError(f"duplicate sample key {key!r} in shard {final.name}")
            seen.add(key)
            shard.add(members, key, cls, ext)
        return shard.finish()
    except BaseException:
        shard.abort()
        raise


def upload_shard(local: str | os.PathLike[str], location: str) -> None:
    """Publish a complete local shard (``NAME.tar`` and its sidecar) as the object ``location`` (a URL ending
    in ``NAME.tar``), in the order that makes it complete: a remote sidecar of an earlier try is removed (it
    must never vouch for the new tar), the tar is uploaded and checked (:func:`storage.upload`: size, and MD5
    where the store reports one), and only then the sidecar is uploaded."""
    local = Path(local)
    if storage.basename(location) != local.name:
        raise ValueError(f"upload_shard: {local.name} would be stored as {storage.basename(location)}")
    remote_sidecar = sidecar_location(location)
    storage.remove(remote_sidecar)
    storage.upload(local, location)
    storage.upload(sidecar_path(local), remote_sidecar)
