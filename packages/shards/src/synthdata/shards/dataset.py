"""A shard directory opened once: its ``dataset.json`` and the index of every complete shard, validated.

:meth:`ShardDataset.open` reads the sidecars (never the tars) of a local directory or a directory URL and checks
them against each other and the class list, so the stages that read shards (filter, tune, pre-training, the
generation runner's resume) share one view of keys, classes and counts instead of parsing sidecars each.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from synthdata.shards import storage
from synthdata.shards.dataset_info import DatasetInfo, find_dataset_json, read_dataset_json
from synthdata.shards.errors import CorruptShardError
from synthdata.shards.layout import DATASET_JSON, SIDECAR_SUFFIX, sidecar_location

#: A sidecar's optional ``labels`` field: where its ``classes`` came from. ``cls`` (the default) means each
#: sample's ``cls`` member; ``json:FIELD`` a field of its ``json`` member holding class indices, and
#: ``json-names:FIELD`` one holding class names (shards adopted by ``synth-shards index --label-field``).
LABELS_FROM_CLS = "cls"


@dataclass(frozen=True, slots=True)
class ShardEntry:
    """One complete shard as its sidecar describes it."""

    name: str
    location: str
    count: int
    nbytes: int
    sha256: str
    keys: tuple[str, ...]
    classes: tuple[int, ...]
    image_formats: tuple[str, ...] = ()
    labels: str = LABELS_FROM_CLS

    @property
    def sidecar(self) -> dict[str, Any]:
        """The sidecar's fields, as the writer wrote them (``labels`` only where it is not ``cls``)."""
        extra = {"labels": self.labels} if self.labels != LABELS_FROM_CLS else {}
        return {
            "shard": self.name,
            "count": self.count,
            "bytes": self.nbytes,
            "sha256": self.sha256,
            "keys": list(self.keys),
            "classes": list(self.classes),
            "image_formats": list(self.image_formats),
            **extra,
        }


def parse_sidecar(obj: Any, source: str) -> ShardEntry:
    """Check one parsed sidecar and return its entry (``source`` is the sidecar's location, for errors)."""
    if not isinstance(obj, dict):
        raise CorruptShardError(f"{source}: a sidecar must be a JSON object")
    name, keys, classes = obj.get("shard"), obj.get("keys"), obj.get("classes")
    count, nbytes, sha = obj.get("count"), obj.get("bytes"), obj.get("sha256")
    expected = storage.basename(source)[: -len(SIDECAR_SUFFIX)] + ".tar"
    if name != expected:
        raise CorruptShardError(f"{source}: names shard {name!r}, expected {expected!r}")
    if not isinstance(keys, list) or not isinstance(classes, list) or len(keys) != len(classes):
        raise CorruptShardError(f"{source}: 'keys' and 'classes' must be lists of one length")
    if count != len(keys) or not isinstance(nbytes, int) or not isinstance(sha, str):
        raise CorruptShardError(f"{source}: 'count', 'bytes' or 'sha256' disagree with the key list")
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in classes):
        raise CorruptShardError(f"{source}: class indices must be non-negative integers")
    labels = obj.get("labels", LABELS_FROM_CLS)
    if not isinstance(labels, str) or not labels:
        raise CorruptShardError(f"{source}: 'labels' must name where the classes came from, e.g. 'cls'")
    base = source[: -len(storage.basename(source))]
    formats = obj.get("image_formats") or []
    return ShardEntry(
        name, base + name, count, nbytes, sha, tuple(keys), tuple(classes), tuple(formats), labels
    )


@dataclass(frozen=True, slots=True)
class ShardDataset:
    """A shard directory's ``dataset.json`` (``info``, None if absent) and its complete shards in name order."""

    location: str
    info: DatasetInfo | None
    shards: tuple[ShardEntry, ...]

    @classmethod
    def open(
        cls,
        location: str | os.PathLike[str],
        *,
        flag: str = "shards",
        require_info: bool = False,
        read_info: bool = True,
    ) -> ShardDataset:
        """Read and validate the index of ``location``: a local directory or a directory URL, or shard
        names in brace notation inside one (``s3://b/dir/gen-000-{000000..000099}.tar``: those shards only,
        each of which must be complete).

        ``read_info=False`` leaves ``dataset.json`` unread (``info`` None): for a writer about to replace it.
        """
        text = storage.check_location(location, flag=flag)
        text, only = _split_pattern(text, flag)
        if not storage.isdir(text) and not storage.exists(storage.join(text, DATASET_JSON)):
            raise FileNotFoundError(f"{flag} {text}: no such shard directory")
        info = None
        if read_info:
            info = read_dataset_json(text) if require_info else find_dataset_json(text)
        names = [n for n in storage.listdir(text, f"*{SIDECAR_SUFFIX}") if not n.startswith(".")]
        if only is not None:
            missing = sorted(set(only) - set(names))
            if missing:
                raise FileNotFoundError(
                    f"{flag} {location}: {len(missing)} of the shards it names are not complete in {text} "
                    f"(no sidecar: {', '.join(n.replace(SIDECAR_SUFFIX, '.tar') for n in missing[:3])})"
                )
            names = sorted(only)
        entries = []
        for source, data in storage.read_many([storage.join(text, n) for n in names]).items():
            if data is None:
                raise CorruptShardError(f"{source}: unreadable sidecar (gone since the listing, or no access)")
            try:
                obj = json.loads(data)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise CorruptShardError(f"{source}: unreadable sidecar ({exc})") from exc
            entries.append(parse_sidecar(obj, source))
        return cls.from_entries(text, info, entries)

    @classmethod
    def from_entries(
        cls, location: str, info: DatasetInfo | None, entries: Iterable[ShardEntry]
    ) -> ShardDataset:
        """The dataset of these entries, in name order, with the checks :meth:`open` makes (for a writer that
        has just written the sidecars and need not list and read them back)."""
        ordered = sorted(entries, key=lambda e: sidecar_location(e.name))
        dataset = cls(location, info, tuple(ordered))
        dataset._check()
        return dataset

    def _check(self) -> None:
        seen: dict[str, str] = {}
        for shard in self.shards:
            for key in shard.keys:
                if key in seen:
                    raise CorruptShardError(
                        f"{self.location}: key {key!r} is in both {seen[key]} and {shard.name}; keys must be unique"
                    )
                seen[key] = shard.name
        if self.info is not None:
            top = max((max(s.classes, default=-1) for s in self.shards), default=-1)
            if top >= len(self.info.classes):
                raise CorruptShardError(
                    f"{self.location}: a sidecar lists class index {top} but dataset.json has "
                    f"{len(self.info.classes)} classes"
                )

    @property
    def classes(self) -> list[str]:
        """The class names from ``dataset.json`` ([] without one)."""
        return list(self.info.classes) if self.info is not None else []

    @property
    def num_samples(self) -> int:
        return sum(s.count for s in self.shards)

    @property
    def urls(self) -> list[str]:
        """Each complete shard's path or URL, in name order."""
        return [s.location for s in self.shards]

    def class_counts(self) -> Counter[int]:
        """Samples per class index, from the sidecars."""
        counts: Counter[int] = Counter()
        for shard in self.shards:
            counts.update(shard.classes)
        return counts

    def key_index(self) -> dict[str, tuple[str, int]]:
        """``key -> (shard name, class index)`` for every sample."""
        return {k: (s.name, c) for s in self.shards for k, c in zip(s.keys, s.classes, strict=True)}

    def shard(self, name: str) -> ShardEntry:
        """The entry of shard ``name``."""
        for s in self.shards:
            if s.name == name:
                return s
        raise KeyError(f"{self.location} has no complete shard {name!r}")


def _split_pattern(location: str, flag: str) -> tuple[str, list[str] | None]:
    """``(directory, sidecar names)`` of a brace pattern / shard URL list in one directory; else
    ``(location, None)``."""
    if not (location.endswith(".tar") or "{" in location):
        return location, None
    import braceexpand

    urls = list(braceexpand.braceexpand(location))
    parents = {u[: -len(storage.basename(u))].rstrip("/") for u in urls}
    if len(parents) != 1 or not all(u.endswith(".tar") for u in urls):
        raise FileNotFoundError(
            f"{flag} {location}: a shard pattern must name .tar files in one directory (its dataset.json and "
            "sidecars are read from there)"
        )
    names = [storage.basename(u)[: -len(".tar")] + SIDECAR_SUFFIX for u in urls]
    return parents.pop() or ".", names
