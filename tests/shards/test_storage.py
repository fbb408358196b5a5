"""synthdata.shards.storage on memory:// and HTTP: batched reads and missing files."""

from __future__ import annotations

import uuid

import pytest

from synthdata.shards import storage


@pytest.fixture
def mem() -> str:
    """A fresh memory:// directory holding a.json and b.json."""
    base = f"memory://storage-{uuid.uuid4().hex}"
    storage.write_bytes(f"{base}/a.json", b"A")
    storage.write_bytes(f"{base}/b.json", b"BB")
    return base


def test_read_many_keeps_order_and_marks_missing(mem, tmp_path):
    (tmp_path / "c.json").write_bytes(b"C")
    locs = [f"{mem}/b.json", str(tmp_path / "c.json"), f"{mem}/gone.json", f"{mem}/a.json", str(tmp_path / "x")]
    assert storage.read_many(locs) == dict(zip(locs, [b"BB", b"C", None, b"A", None], strict=True))
    assert list(storage.read_many(locs)) == locs


def test_list_sizes_and_missing_reads(mem):
    assert storage.list_sizes(mem) == {"a.json": 1, "b.json": 2}
    assert storage.list_sizes(f"{mem}/none") == {}
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(f"{mem}/gone.json")


def test_a_missing_http_file_is_file_not_found(http_server):
    (http_server.root / "d").mkdir()
    (http_server.root / "d" / "x.json").write_bytes(b"{}")
    assert storage.read_bytes(http_server.url("d/x.json")) == b"{}"
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(http_server.url("d/gone.json"))
    assert storage.read_many([http_server.url("d/gone.json"), http_server.url("d/x.json")]) == {
        http_server.url("d/gone.json"): None,
        http_server.url("d/x.json"): b"{}",
    }
