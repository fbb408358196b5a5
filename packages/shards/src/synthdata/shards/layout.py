"""Names of the files in a shard directory (see docs/shards.md)."""

from __future__ import annotations

import os
import re
from pathlib import Path

DATASET_JSON = "dataset.json"
SIDECAR_SUFFIX = ".idx.json"
SHARD_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*-(\d{3,})-(\d{6,})\.tar$")
PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")


def shard_name(prefix: str, rank: int, index: int) -> str:
    """``PREFIX-{rank:03d}-{index:06d}.tar``."""
    if not PREFIX_PATTERN.match(prefix):
        raise ValueError(f"shard name prefix {prefix!r} must match [A-Za-z0-9][A-Za-z0-9_]*")
    if rank < 0 or index < 0:
        raise ValueError(f"shard rank {rank} and index {index} must be non-negative")
    return f"{prefix}-{rank:03d}-{index:06d}.tar"


def sidecar_path(shard: Path) -> Path:
    """The index file written after ``shard`` is complete: ``NAME.idx.json`` beside ``NAME.tar``."""
    return shard.with_name(shard.name[: -len(".tar")] + SIDECAR_SUFFIX)


def sidecar_location(shard: str | os.PathLike[str]) -> str:
    """The sidecar of a shard given as a path or a URL (``NAME.tar`` -> ``NAME.idx.json``)."""
    text = os.fspath(shard)
    return text[: -len(".tar")] + SIDECAR_SUFFIX if text.endswith(".tar") else text + SIDECAR_SUFFIX


def shard_for_sidecar(sidecar: Path) -> Path:
    """Inverse of :func:`sidecar_path`."""
    return sidecar.with_name(sidecar.name[: -len(SIDECAR_SUFFIX)] + ".tar")
