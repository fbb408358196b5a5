"""Small builders shared by the shard tests."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from synthdata.shards import DatasetInfo, Sample, ShardWriter, write_dataset_json


def rgb(seed: int, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)


def make_dataset(
    directory: Path, n: int = 10, classes: int = 3, max_count: int = 4, fmt: str = "png"
) -> Path:
    with ShardWriter(directory, prefix="t", max_count=max_count, image_format=fmt) as w:
        for i in range(n):
            w.write(Sample(f"k{i:04d}", rgb(i), i % classes, {"i": i}))
    write_dataset_json(directory, DatasetInfo(classes=[f"class {c}" for c in range(classes)], name="t"))
    return directory


def flip_byte_in_member(shard: Path, suffix: str = ".png", where: float = 0.5) -> str:
    """Flip one byte in the data of the first member ending with ``suffix``; return the member name."""
    with tarfile.open(shard) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(suffix))
    offset = member.offset_data + int(member.size * where)
    data = bytearray(shard.read_bytes())
    data[offset] ^= 0xFF
    shard.write_bytes(bytes(data))
    return member.name
