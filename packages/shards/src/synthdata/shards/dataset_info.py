"""``dataset.json``: the schema version, class list and producing config of a shard directory."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from synthdata.shards.atomic import atomic_write_json, ensure_writable_dir
from synthdata.shards.errors import DatasetInfoError
from synthdata.shards.layout import DATASET_JSON

SCHEMA_VERSION = 1


@dataclass(slots=True)
class DatasetInfo:
    """Describes a shard directory. ``config`` holds whatever produced it (generation settings, digests…)."""

    classes: list[str]
    name: str = ""
    producer: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "name": self.name,
            "producer": self.producer,
            "created": self.created or datetime.now(UTC).isoformat(timespec="seconds"),
            "classes": list(self.classes),
            "config": self.config,
        }

    @classmethod
    def from_json(cls, obj: object, source: str = DATASET_JSON) -> DatasetInfo:
        if not isinstance(obj, dict):
            raise DatasetInfoError(f"{source}: expected a JSON object at the top level")
        version = obj.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise DatasetInfoError(f"{source}: 'schema_version' must be a positive integer, got {version!r}")
        if version > SCHEMA_VERSION:
            raise DatasetInfoError(
                f"{source}: schema_version {version} is newer than this synthdata understands ({SCHEMA_VERSION}); "
                "upgrade synthdata"
            )
        validate_classes(obj.get("classes"), source)
        config = obj.get("config", {})
        if not isinstance(config, dict):
            raise DatasetInfoError(f"{source}: 'config' must be an object")
        return cls(
            classes=list(obj["classes"]),
            name=str(obj.get("name", "")),
            producer=str(obj.get("producer", "")),
            config=config,
            created=str(obj.get("created", "")),
            schema_version=version,
        )


def validate_classes(classes: object, source: str = "classes") -> list[str]:
    """Check a class list: a non-empty list of unique, non-empty strings."""
    if not isinstance(classes, list) or not classes:
        raise DatasetInfoError(f"{source}: 'classes' must be a non-empty list of class names")
    bad = [c for c in classes if not isinstance(c, str) or not c.strip()]
    if bad:
        raise DatasetInfoError(f"{source}: class names must be non-empty strings, got {bad[:3]!r}")
    dupes = sorted({c for c in classes if classes.count(c) > 1})
    if dupes:
        raise DatasetInfoError(f"{source}: duplicate class names {dupes[:5]!r}; class names must be unique")
    return classes


def write_dataset_json(directory: str | os.PathLike[str], info: DatasetInfo) -> Path:
    """Validate ``info`` and write ``DIR/dataset.json`` atomically."""
    obj = info.to_json()
    DatasetInfo.from_json(obj, "dataset info")  # same checks as on read
    directory = ensure_writable_dir(Path(directory))
    path = directory / DATASET_JSON
    try:
        atomic_write_json(path, obj)
    except TypeError as exc:
        raise DatasetInfoError(f"dataset config is not JSON-serialisable ({exc}); pass plain types") from exc
    return path


def parse_dataset_json(text: str, source: str) -> DatasetInfo:
    """Parse and check the text of a ``dataset.json`` read from ``source`` (named in errors)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetInfoError(f"{source} is not valid JSON (line {exc.lineno}): {exc.msg}") from exc
    return DatasetInfo.from_json(obj, source)


def find_dataset_json(directory: str | os.PathLike[str]) -> DatasetInfo | None:
    """Read and check ``DIR/dataset.json`` (``DIR`` a local directory or a directory URL); None if it is absent."""
    from synthdata.shards import storage

    source = storage.join(directory, DATASET_JSON)
    try:
        text = storage.read_text(source)
    except FileNotFoundError:
        return None
    return parse_dataset_json(text, source)


def read_dataset_json(directory: str | os.PathLike[str]) -> DatasetInfo:
    """Read and check ``DIR/dataset.json`` (``DIR`` a local directory or a directory URL)."""
    from synthdata.shards import storage

    if not storage.is_url(directory) and not Path(directory).is_dir():
        raise DatasetInfoError(f"{directory} is not a directory; pass a shard directory")
    info = find_dataset_json(directory)
    if info is None:
        raise DatasetInfoError(
            f"{storage.join(directory, DATASET_JSON)} is missing; this is not a complete synthdata shard directory"
        )
    return info
