"""Summary statistics of a shard directory."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from synthdata.shards import storage
from synthdata.shards.dataset_info import read_dataset_json
from synthdata.shards.errors import DatasetInfoError
from synthdata.shards.reader import ReadStats, iter_samples, shard_locations


@dataclass(slots=True)
class DatasetStats:
    """Per-class counts, bytes and image sizes of a shard directory."""

    shards: int = 0
    samples: int = 0
    bytes: int = 0
    classes: list[str] = field(default_factory=list)
    per_class: dict[int, int] = field(default_factory=dict)
    image_sizes: dict[str, int] = field(default_factory=dict)
    image_formats: dict[str, int] = field(default_factory=dict)
    skipped_shards: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["per_class"] = {
            str(i): {"name": self.classes[i] if i < len(self.classes) else None, "count": n}
            for i, n in sorted(self.per_class.items())
        }
        return out


def dataset_stats(directory: str | os.PathLike[str]) -> DatasetStats:
    """Count samples per class, bytes, image sizes and formats (corrupt shards are skipped and listed).

    ``directory`` is a local directory or a directory URL; each remote shard is fetched once.
    """
    location = storage.check_location(directory, flag="stats")
    stats = DatasetStats()
    try:
        stats.classes = read_dataset_json(location).classes
    except DatasetInfoError:
        stats.classes = []
    shards = shard_locations(location)
    stats.shards = len(shards)
    sizes = storage.list_sizes(location, "*.tar")  # one listing, not an exists and a size per shard
    for shard in shards:
        size = sizes.get(storage.basename(shard))
        if size is not None:  # a tar its sidecar lists but that is gone counts nothing
            stats.bytes += size if size >= 0 else storage.size(shard)  # -1: the listing gave no size
    per_class: Counter[int] = Counter()
    sizes: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    read = ReadStats()
    for sample in iter_samples(shards, on_error="skip", stats=read):
        per_class[sample.cls] += 1
        sizes[f"{sample.image.width}x{sample.image.height}"] += 1
        formats[sample.image_ext] += 1
    stats.samples = read.samples
    stats.per_class = dict(per_class)
    stats.image_sizes = dict(sizes)
    stats.image_formats = dict(formats)
    stats.skipped_shards = read.skipped_shards
    return stats
