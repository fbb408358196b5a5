"""Run identity: one check-or-record rule for every stage's resume decision."""

from __future__ import annotations

import json
from pathlib import Path

from synthdata.shards.identity import (
    check_or_record,
    compare_identity,
    read_identity,
    settings_diff,
    settings_digest,
)


def test_digest_is_canonical() -> None:
    assert settings_digest({"a": 1, "b": [1, 2]}) == settings_digest({"b": [1, 2], "a": 1})
    assert settings_digest({"a": (1, 2)}) == settings_digest({"a": [1, 2]})
    assert settings_digest({"a": 1}) != settings_digest({"a": 1.5})


def test_new_same_changed(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "identity.json"
    first = check_or_record(path, {"seed": 0, "size": 64}, what="test")
    assert first.status == "new" and read_identity(path) == {"seed": 0, "size": 64}
    assert check_or_record(path, {"size": 64, "seed": 0}).status == "same"
    changed = check_or_record(path, {"seed": 1, "size": 64})
    assert changed.status == "changed" and not changed.resumable
    assert changed.diff == ("seed: 0 -> 1",)
    assert read_identity(path) == {"seed": 0, "size": 64}  # the old record stays until the caller replaces it


def test_unreadable_record_counts_as_none(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    path.write_text("{not json")
    assert read_identity(path) is None
    path.write_text(json.dumps({"schema": "something-else", "settings": {}}))
    assert read_identity(path) is None
    assert compare_identity(None, {"a": 1}).status == "new"


def test_nested_diff_names_the_leaf() -> None:
    diff = settings_diff({"gen": {"size": 64, "steps": "100"}, "x": 1}, {"gen": {"size": 256, "steps": "100"}})
    assert diff == ["gen.size: 64 -> 256", "x: 1 -> None"]
    check = compare_identity({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}, {"a": 0, "b": 0, "c": 0, "d": 0, "e": 0})
    assert check.describe(limit=2) == "a: 1 -> 0; b: 2 -> 0 (+3 more)"
