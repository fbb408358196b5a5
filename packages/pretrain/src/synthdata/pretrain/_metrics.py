"""JSON-lines metrics and the run's config file (written by rank 0 only)."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from synthdata.shards.atomic import atomic_write_json


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class MetricsLog:
    """Appends one JSON object a line; a no-op on ranks other than 0."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled

    def write(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        record = {"event": event, "time": round(time.time(), 3), **_clean(fields)}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=False) + "\n")


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` (NaN/inf made JSON-safe) to ``path`` atomically and durably."""
    atomic_write_json(path, _clean(obj), ensure_ascii=True)


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (or ``transfer.jsonl``), in order."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
