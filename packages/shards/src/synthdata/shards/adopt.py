"""Adopt WebDataset shards that synthdata did not write: index them where they are, never rewriting a tar.

:func:`index_shards` streams each ``*.tar`` without a sidecar once (local or through fsspec), writes its
sidecar (the writer's schema), then the interop files and ``dataset.json``. A rerun skips the shards already
indexed, so an interrupted run resumes. See ``synth-shards index`` in ``docs/shards.md``.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from synthdata.shards import storage
from synthdata.shards.atomic import HashingReader
from synthdata.shards.dataset import LABELS_FROM_CLS, ShardDataset, parse_sidecar
from synthdata.shards.dataset_info import DatasetInfo, find_dataset_json
from synthdata.shards.encoding import IMAGE_EXTENSIONS
from synthdata.shards.errors import CorruptShardError, ShardError
from synthdata.shards.interop import InteropFiles, label_source, write_interop_files
from synthdata.shards.layout import DATASET_JSON, SIDECAR_SUFFIX, sidecar_location
from synthdata.shards.reader import iter_tar_stream
from synthdata.shards.writer import SIDECAR_SCHEMA

PRODUCER = "synth-shards index"


@dataclass(frozen=True, slots=True)
class LabelRule:
    """Where a sample's class comes from: its ``cls`` member, or ``field`` of its ``json`` member (an int,
    or a class name looked up in ``classes``)."""

    field: str = ""
    classes: tuple[str, ...] = ()

    def source(self, named: bool) -> str:
        """The sidecar's ``labels`` value (``named``: some labels were class names)."""
        if not self.field:
            return LABELS_FROM_CLS
        return f"json-names:{self.field}" if named else f"json:{self.field}"

    def label(self, members: dict[str, bytes]) -> tuple[int | None, bool, str]:
        """``(class index or None, looked up by name, why not)`` for one sample's members."""
        if not self.field:
            if "cls" not in members:
                return None, False, "no cls member"
            try:
                value: Any = int(members["cls"].decode().strip())
            except (ValueError, UnicodeDecodeError):
                return None, False, f"cls {members['cls'][:20]!r} is not an integer"
        else:
            try:
                meta = json.loads(members["json"]) if "json" in members else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                return None, False, "unreadable json member"
            if not isinstance(meta, dict) or self.field not in meta:
                return None, False, f"no json field {self.field!r}"
            value = meta[self.field]
        if isinstance(value, str):
            if value in self.classes:
                return self.classes.index(value), True, ""
            hint = "" if self.classes else " (pass --classes FILE to look class names up)"
            return None, False, f"class name {value[:40]!r} is not in the class list{hint}"
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return None, False, f"label {value!r} is not a non-negative integer"
        return value, False, ""


@dataclass(slots=True)
class _Tally:
    keys: list[str] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)
    formats: set[str] = field(default_factory=set)
    named: bool = False
    no_image: list[str] = field(default_factory=list)
    no_label: list[tuple[str, str]] = field(default_factory=list)

    def add(self, key: str, members: dict[str, bytes], rule: LabelRule) -> None:
        self.keys.append(key)
        image = next((e for e in IMAGE_EXTENSIONS if e in members), None)
        if image is None:
            self.no_image.append(key)
        else:
            self.formats.add(image)
        cls, named, why = rule.label(members)
        if cls is None:
            self.no_label.append((key, why))
        self.classes.append(-1 if cls is None else cls)
        self.named = self.named or named

    def problem(self, shard: str) -> str | None:
        """One line naming the shard and the counts of samples without an image or a label, or None."""
        parts = []
        if self.no_image:
            first = self.no_image[0]
            exts = "/".join(IMAGE_EXTENSIONS)
            parts.append(f"{len(self.no_image)} without an image ({exts}; first {first!r})")
        if self.no_label:
            key, why = self.no_label[0]
            parts.append(f"{len(self.no_label)} without a label (first {key!r}: {why})")
        if not parts:
            return None
        return (
            f"{shard}: {' and '.join(parts)} of {len(self.keys)} samples; every sample needs an image and a "
            "label to be indexed (the tar is left as it is)"
        )


def scan_shard(location: str, rule: LabelRule) -> dict[str, Any]:
    """Read one tar once and return its sidecar: keys in order, classes, image formats, size and SHA-256."""
    name = storage.basename(location)
    tally = _Tally()
    with storage.open_read(location) as raw:
        reader = HashingReader(raw)
        try:
            for key, members in iter_tar_stream(reader, name):
                tally.add(key, members, rule)
        except (tarfile.TarError, EOFError) as exc:
            raise CorruptShardError(f"{location}: unreadable tar ({exc}); the tar is left as it is") from exc
        reader.drain()
    problem = tally.problem(location)
    if problem:
        raise CorruptShardError(problem)
    side: dict[str, Any] = {
        "schema": SIDECAR_SCHEMA,
        "shard": name,
        "count": len(tally.keys),
        "sha256": reader.sha256.hexdigest(),
        "bytes": reader.bytes_read,
        "keys": tally.keys,
        "classes": tally.classes,
        "image_formats": sorted(tally.formats),
    }
    if rule.field:
        side["labels"] = rule.source(tally.named)
    return side


@dataclass(frozen=True, slots=True)
class IndexResult:
    """What :func:`index_shards` did."""

    location: str
    indexed: tuple[str, ...]
    shards: int
    samples: int
    classes: tuple[str, ...]
    interop: InteropFiles
    wrote_dataset_json: bool


def default_classes(count: int) -> list[str]:
    """Class names when none are given: each index as a string, ``"0"``, ``"1"``, ..."""
    return [str(i) for i in range(max(count, 1))]


def _class_names(
    dataset: ShardDataset, given: Sequence[str] | None, existing: DatasetInfo | None
) -> list[str]:
    """The class list for ``dataset.json``: the given one, an earlier index run's, or the indices."""
    top = max((max(s.classes, default=-1) for s in dataset.shards), default=-1)
    where = next((s.name for s in dataset.shards if top in s.classes), "")
    earlier = list(existing.classes) if existing is not None else []
    if given:
        names, origin = list(given), "--classes"
        named = next((s.name for s in dataset.shards if s.labels.startswith("json-names:")), None)
        if earlier and named and earlier != names:
            raise ShardError(
                f"{named} was indexed by looking class names up in another class list than this --classes; "
                "pass the earlier list, or delete the sidecars to re-index"
            )
    elif earlier and earlier != default_classes(len(earlier)):
        names, origin = earlier, f"{DATASET_JSON} (an earlier index run)"
    else:
        return default_classes(top + 1)
    if top >= len(names):
        raise ShardError(
            f"{where}: class index {top}, but the class list from {origin} has {len(names)} names; "
            "pass a --classes FILE that covers every index"
        )
    return names


def _family(labels: str) -> str:
    """``json-names:F`` and ``json:F`` are one source (field F); ``cls`` another."""
    return "json:" + labels.removeprefix("json-names:") if labels.startswith("json-names:") else labels


def _check_labels(dataset: ShardDataset, rule: LabelRule) -> None:
    """Refuse a run whose label source differs from the shards indexed before (their classes would not mix)."""
    want = _family(rule.source(False))
    for shard in dataset.shards:
        if _family(shard.labels) != want:
            told = f"--label-field {rule.field}" if rule.field else "the cls member"
            raise ShardError(
                f"{shard.name} was indexed with labels from {shard.labels!r}, this run takes them from {told}; "
                f"rerun with the same labels, or delete the {SIDECAR_SUFFIX} files of the shards to re-index"
            )


def _todo(location: str, existing: DatasetInfo | None, rule: LabelRule) -> list[str]:
    """The tars without a sidecar, after refusing directories that are not ours to index."""
    names = storage.listdir(location)
    tars = sorted(n for n in names if n.endswith(".tar") and not n.startswith("."))
    indexed = {n[: -len(SIDECAR_SUFFIX)] + ".tar" for n in names if n.endswith(SIDECAR_SUFFIX)}
    todo = [t for t in tars if t not in indexed]
    if not tars:
        raise ShardError(f"index {location}: no *.tar shards there")
    orphans = sorted(indexed - set(tars))
    if orphans:
        raise ShardError(
            f"index {location}: {orphans[0][: -len('.tar')]}{SIDECAR_SUFFIX} describes a tar that is not there; "
            "restore the tar or delete the sidecar"
        )
    if existing is not None and existing.producer != PRODUCER:
        if todo:
            raise ShardError(
                f"index {location}: its {DATASET_JSON} says {existing.producer or 'another tool'} wrote these "
                f"shards, so {todo[0]} (no sidecar) is an incomplete shard for a rerun of it to redo, "
                "not one to adopt"
            )
        if rule.field or rule.classes:
            raise ShardError(
                f"index {location}: no shard to adopt, and the classes come from its {DATASET_JSON}; "
                "drop --classes/--label-field"
            )
    return todo


def index_shards(
    location: str | os.PathLike[str],
    *,
    classes: Sequence[str] | None = None,
    label_field: str = "",
    name: str | None = None,
    on_shard: Callable[[str, int], None] | None = None,
) -> IndexResult:
    """Index the foreign WebDataset shards of ``location`` (a local directory, ``s3://`` or ``gs://``).

    Every ``*.tar`` without a sidecar is read once and gets one; tars are never rewritten. Labels come from
    each sample's ``cls`` member, or with ``label_field`` from that field of its ``json`` member (an int, or
    a name in ``classes``). Class names: ``classes``, else an earlier index run's, else ``"0"``, ``"1"``, ...
    Then the interop files and ``dataset.json`` (producer ``synth-shards index``) are written, in that order.
    A directory whose ``dataset.json`` another tool wrote only gets the interop files. ``on_shard(name,
    count)`` is called after each sidecar. http(s) locations are refused before anything is read.
    """
    text = storage.check_location(location, flag="index", write=True)
    if not storage.isdir(text):
        raise FileNotFoundError(f"index {text}: no such directory")
    rule = LabelRule(label_field, tuple(classes or ()))
    existing = find_dataset_json(text)
    todo = _todo(text, existing, rule)
    before = ShardDataset.open(text, flag="index", read_info=False)
    _check_labels(before, rule)
    entries = list(before.shards)
    for tar in todo:
        side = scan_shard(storage.join(text, tar), rule)
        source = sidecar_location(storage.join(text, tar))
        storage.write_json(source, side)
        entries.append(parse_sidecar(side, source))
        if on_shard is not None:
            on_shard(tar, side["count"])
    ours = existing is None or existing.producer == PRODUCER
    dataset = ShardDataset.from_entries(text, None if ours else existing, entries)
    names = _class_names(dataset, classes, existing) if ours else list(existing.classes)  # type: ignore[union-attr]
    name = name or (existing.name if existing is not None and existing.name else storage.basename(text))
    interop = write_interop_files(dataset, classes=names, name=name)
    if ours:
        info = DatasetInfo(
            classes=names,
            name=name,
            producer=PRODUCER,
            config={"labels": label_source(dataset), "classes_given": bool(classes)},
        )
        obj = info.to_json()
        DatasetInfo.from_json(obj, "dataset info")  # the checks a reader makes
        storage.write_json(storage.join(text, DATASET_JSON), obj)
    return IndexResult(
        text, tuple(todo), len(dataset.shards), dataset.num_samples, tuple(names), interop, ours
    )
