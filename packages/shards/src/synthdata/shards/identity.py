"""Run identity: whether what is already in an output may be resumed, decided the same way by every stage.

A stage describes the settings that decide its output as a JSON-able dict. :func:`check_or_record` compares
them with what an earlier run recorded next to its output: ``new`` (nothing recorded; now it is), ``same``
(resume) or ``changed`` (with a readable diff; the caller refuses or redoes). The digest is the SHA-256 of
canonical JSON, so equal settings give equal digests on every machine.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from synthdata.shards.atomic import atomic_write_json

IDENTITY_SCHEMA = "synthdata.run-identity/1"


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, non-ASCII kept, anything else through ``str``."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def settings_digest(obj: Any) -> str:
    """Hex SHA-256 of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def jsonable(obj: Any) -> Any:
    """``obj`` after a JSON round trip (tuples become lists), so it compares equal to what is read back."""
    return json.loads(canonical_json(obj))


def settings_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``key: old -> new`` for every leaf that differs, nested keys joined with dots."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                out.append(f"{name}: {old.get(key)!r} -> {new.get(key)!r}")
            else:
                out.extend(settings_diff(old[key], new[key], name))
        return out
    return [] if old == new else [f"{prefix or 'value'}: {old!r} -> {new!r}"]


@dataclass(frozen=True, slots=True)
class IdentityCheck:
    """The outcome of :func:`check_or_record`."""

    status: Literal["new", "same", "changed"]
    digest: str
    diff: tuple[str, ...] = ()

    @property
    def resumable(self) -> bool:
        return self.status != "changed"

    def describe(self, limit: int = 4) -> str:
        """The first ``limit`` differences, for an error or log line."""
        more = f" (+{len(self.diff) - limit} more)" if len(self.diff) > limit else ""
        return "; ".join(self.diff[:limit]) + more


def read_identity(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The settings recorded at ``path``, or None when there is no readable record."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict) or obj.get("schema") != IDENTITY_SCHEMA:
        return None
    settings = obj.get("settings")
    return settings if isinstance(settings, dict) else None


def record_identity(path: str | os.PathLike[str], settings: Mapping[str, Any], *, what: str = "") -> Path:
    """Write ``settings`` (and their digest) to ``path`` atomically."""
    obj = {"schema": IDENTITY_SCHEMA, "what": what, "digest": settings_digest(settings), "settings": settings}
    return atomic_write_json(path, jsonable(obj), mkdir=True)


def compare_identity(recorded: Mapping[str, Any] | None, settings: Mapping[str, Any]) -> IdentityCheck:
    """Compare recorded settings (None: nothing recorded) with ``settings``; writes nothing."""
    digest = settings_digest(settings)
    if recorded is None:
        return IdentityCheck("new", digest)
    current = jsonable(settings)
    if settings_digest(recorded) == digest:
        return IdentityCheck("same", digest)
    return IdentityCheck("changed", digest, tuple(settings_diff(recorded, current)))


def check_or_record(
    path: str | os.PathLike[str], settings: Mapping[str, Any], *, what: str = "", record: bool = True
) -> IdentityCheck:
    """Compare ``settings`` with the record at ``path``; write them there when nothing was recorded (or,
    with ``record`` and ``status == "changed"``, leave the old record for the caller to replace once it
    has cleared the old output)."""
    check = compare_identity(read_identity(path), settings)
    if check.status == "new" and record:
        record_identity(path, settings, what=what)
    return check
