"""The prompts file: JSONL, one object a line with exactly ``id``, ``class_index``, ``class_name``,
``prompt`` and ``source``. Written atomically (temp file + rename), read back with validation."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from synthdata.prompts.errors import PromptsError
from synthdata.shards.atomic import atomic_open

SOURCES = ("le", "template", "file")
FIELDS = ("id", "class_index", "class_name", "prompt", "source")


def prompt_id(class_index: int, n: int) -> str:
    """The stable id of the ``n``-th prompt of a class: ``c{class_index:04d}-{n:05d}`` (ASCII, no raw text)."""
    return f"c{class_index:04d}-{n:05d}"


@dataclass(frozen=True)
class PromptRecord:
    """One line of a prompts file."""

    id: str
    class_index: int
    class_name: str
    prompt: str
    source: str

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "class_index": self.class_index,
                "class_name": self.class_name,
                "prompt": self.prompt,
                "source": self.source,
            },
            ensure_ascii=False,
        )


def write_prompts(path: str | Path, records: Iterable[PromptRecord]) -> int:
    """Write ``records`` to ``path`` as JSONL, atomically; return the number of lines written.

    The file appears complete or not at all: it is written to a hidden temp file beside ``path``,
    fsynced and renamed over it.
    """
    n = 0
    seen: set[str] = set()
    with atomic_open(path, "w", encoding="utf-8", newline="\n", mkdir=True) as fh:
        for rec in records:
            if rec.id in seen:
                raise PromptsError(f"duplicate prompt id {rec.id!r}")
            seen.add(rec.id)
            fh.write(rec.to_json() + "\n")
            n += 1
    return n


def read_prompts(path: str | Path) -> list[PromptRecord]:
    """Read a prompts file (a local path or an ``s3://``/``gs://``/``http(s)://`` URL), checking every line
    has exactly the five fields with the right types."""
    from synthdata.shards import storage

    source = str(path) if storage.is_url(path) else Path(path)
    text = storage.read_text(source)
    out: list[PromptRecord] = []
    # lines as a text-mode file has them (\n, \r\n, \r), not str.splitlines(), which also splits at
    # U+2028, U+0085 and the like: JSON keeps those unescaped inside strings
    for lineno, line in enumerate(io.StringIO(text, newline=None), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptsError(f"{source}:{lineno}: not JSON: {exc}") from exc
        if not isinstance(obj, dict) or set(obj) != set(FIELDS):
            raise PromptsError(f"{source}:{lineno}: expected exactly the fields {FIELDS}")
        if not isinstance(obj["class_index"], int) or not all(
            isinstance(obj[k], str) for k in ("id", "class_name", "prompt", "source")
        ):
            raise PromptsError(f"{source}:{lineno}: wrong field types")
        try:
            out.append(PromptRecord(**obj))
        except ValueError as exc:
            raise PromptsError(f"{source}:{lineno}: {exc}") from exc
    return out
