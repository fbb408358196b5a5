"""synthdata.shards.atomic: light to import, byte-exact writes; the package's lazy public names."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

import synthdata.shards
from synthdata.shards.atomic import (
    atomic_open,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    sha256_file,
)
from synthdata.shards.errors import OutputDirError


def test_atomic_imports_neither_torch_nor_webdataset():
    code = (
        "import sys, synthdata.shards.atomic; "
        "assert 'torch' not in sys.modules and 'webdataset' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("name", synthdata.shards.__all__)
def test_every_public_name_resolves(name):
    assert getattr(synthdata.shards, name) is not None
    assert name in dir(synthdata.shards)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        synthdata.shards.no_such_name  # noqa: B018


def test_writes_are_exact_and_leave_no_temp(tmp_path):
    obj = {"b": [1, "é"], "a": 1.5}
    p = atomic_write_json(tmp_path / "x.json", obj)
    assert p == tmp_path / "x.json"
    assert p.read_bytes() == (json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()
    atomic_write_json(p, obj, ensure_ascii=True)
    assert p.read_text() == json.dumps(obj, indent=1, sort_keys=True) + "\n"
    assert atomic_write_text(str(tmp_path / "t.txt"), "a\nb").read_bytes() == b"a\nb"
    assert atomic_write_bytes(tmp_path / "new" / "deep" / "b.bin", b"xy", mkdir=True).read_bytes() == b"xy"
    assert sha256_file(tmp_path / "new" / "deep" / "b.bin") == hashlib.sha256(b"xy").hexdigest()
    assert sorted(q.name for q in tmp_path.rglob(".*")) == []


def test_failed_write_keeps_the_old_file(tmp_path):
    p = atomic_write_bytes(tmp_path / "f", b"old")
    with pytest.raises(RuntimeError), atomic_open(p, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("new")
        raise RuntimeError("boom")
    assert p.read_bytes() == b"old" and [q.name for q in tmp_path.iterdir()] == ["f"]


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(OutputDirError, match="cannot write"):
        atomic_write_bytes(tmp_path / "absent" / "f", b"x")


def test_removed_on_failure_takes_back_only_the_empty_directories_it_created(tmp_path):
    from synthdata.shards.atomic import first_missing_dir, removed_on_failure

    out = tmp_path / "a" / "b" / "out"
    assert first_missing_dir(out) == tmp_path / "a"
    with pytest.raises(RuntimeError), removed_on_failure(out):
        out.mkdir(parents=True)
        raise RuntimeError("failed before writing anything")
    assert not (tmp_path / "a").exists()
    with pytest.raises(RuntimeError), removed_on_failure(out):
        out.mkdir(parents=True)
        (out / "partial.bin").write_bytes(b"x")  # something a rerun resumes from: kept
        raise RuntimeError("failed later")
    assert (out / "partial.bin").exists()
    (out / "partial.bin").unlink()
    with pytest.raises(RuntimeError), removed_on_failure(out):  # existed before: never removed
        raise RuntimeError("failed")
    assert out.is_dir() and first_missing_dir(out) is None
