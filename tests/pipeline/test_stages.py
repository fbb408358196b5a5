"""Stage markers and fingerprints."""

from __future__ import annotations

import os

from synthdata.tools._pipeline.stages import (
    StageMarker,
    fingerprint,
    marker_path,
    read_marker,
    remove_marker,
    write_marker,
)


def _marker(stage: str = "filter") -> StageMarker:
    return StageMarker(stage=stage, config={"a": 1}, config_hash="h", inputs={}, outputs={"x": "d"},
                       started="s", finished="f", seconds=1.5)


def test_marker_round_trip_and_removal(tmp_path):
    write_marker(tmp_path, _marker())
    assert read_marker(tmp_path, "filter") == _marker()
    remove_marker(tmp_path, "filter")
    assert read_marker(tmp_path, "filter") is None
    remove_marker(tmp_path, "filter")  # absent is fine


def test_unreadable_or_foreign_marker_counts_as_absent(tmp_path):
    path = marker_path(tmp_path, "filter")
    path.parent.mkdir(parents=True)
    path.write_text("{truncated")
    assert read_marker(tmp_path, "filter") is None
    write_marker(tmp_path, _marker("tune"))
    os.replace(marker_path(tmp_path, "tune"), path)  # a marker of another stage under this name
    assert read_marker(tmp_path, "filter") is None


def test_fingerprint_tracks_content_and_ignores_temp_files(tmp_path):
    d = tmp_path / "d"
    assert fingerprint(d) == "absent"
    (d / "sub").mkdir(parents=True)
    (d / "a.json").write_text('{"n": 1}')
    (d / "sub" / "b.txt").write_text("x")
    first = fingerprint(d)
    (d / ".a.json.tmp-123").write_text("partial")
    assert fingerprint(d) == first
    (d / "a.json").write_text('{"n": 2}')
    assert fingerprint(d) != first
    (d / "a.json").write_text('{"n": 1}')
    assert fingerprint(d) == first
    (d / "sub" / "c.bin").write_bytes(b"\0")
    assert fingerprint(d) != first
    assert fingerprint(d / "a.json") == fingerprint(d / "a.json")
