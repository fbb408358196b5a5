"""synth-shards export --imagefolder: class folders with safe names, original bytes, resumable."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from synthdata.shards import (
    DatasetInfo,
    Sample,
    ShardWriter,
    imagefolder_dirname,
    iter_samples,
    write_dataset_json,
)
from synthdata.shards import export as export_module
from synthdata.shards.export import EXPORT_MARKER, safe_file_stem
from synthdata.tools.shards import main

from ._helpers import make_dataset, rgb

ODD = ["../../etc", "a/b", "with space", "猫", "..", "", "x" * 300, "a/b "]


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != EXPORT_MARKER
    }


def test_export_round_trip_keeps_the_original_bytes(tmp_path, capsys):
    d = make_dataset(tmp_path / "d", n=10, classes=3, max_count=4, fmt="jpg")
    out = tmp_path / "folder"
    assert main(["export", str(d), "--imagefolder", str(out)]) == 0
    assert "wrote 10 images" in capsys.readouterr().out
    files = _files(out)
    expected = {
        f"{imagefolder_dirname(s.cls, f'class {s.cls}')}/{s.key}.jpg": s.image
        for s in iter_samples(d, decode=False)
    }
    assert files == expected
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["000_class_0", "001_class_1", "002_class_2"]
    assert json.loads((out / EXPORT_MARKER).read_text())["complete"] is True


def test_class_folder_names_are_safe_and_unique(tmp_path):
    classes = [c or "-" for c in ODD if c != ""] + ["with_space", "with space!"]
    names = [imagefolder_dirname(i, c) for i, c in enumerate(classes)]
    assert len(set(names)) == len(names)
    for name in names:
        assert "/" not in name and " " not in name and not name.startswith(".") and len(name) <= 104
        assert name.isascii() and name[:3].isdigit()
    assert imagefolder_dirname(3, "red stripes") == "003_red_stripes"  # unchanged for plain names
    assert imagefolder_dirname(1234, "x", digits=4) == "1234_x"


@pytest.mark.parametrize("key", ["plain_key-1", *ODD, "-lead", "~7e", "a~", ".hidden", "a.b", "\x00"])
def test_file_stems_are_safe(key):
    stem = safe_file_stem(key)
    assert stem and "/" not in stem and not stem.startswith((".", "-")) and len(stem) <= 200
    assert "\x00" not in stem and stem.isascii()


def test_file_stems_are_unique():
    keys = ["a b", "a_b", "a~20b", "~", "", "-", "~2d", "x" * 300, "x" * 301, "猫", "~e7~8c~ab"]
    stems = [safe_file_stem(k) for k in keys]
    assert len(set(stems)) == len(stems)
    assert safe_file_stem("plain_key-1") == "plain_key-1"


def test_odd_class_names_and_many_classes_export_in_index_order(tmp_path):
    d = tmp_path / "d"
    classes = [f"class {i}/{'..' if i % 2 else '猫'}" for i in range(1001)]
    with ShardWriter(d, prefix="t", max_count=50) as w:
        for i in (0, 7, 999, 1000):
            w.write(Sample(f"k{i}", rgb(i, 4), i))
    write_dataset_json(d, DatasetInfo(classes=classes))
    out = tmp_path / "out"
    assert main(["export", str(d), "--imagefolder", str(out)]) == 0
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(folders) == 1001 and folders[1000] == "1000_class_1000" and folders[7] == "0007_class_7"
    assert (out / "0999_class_999" / "k999.png").is_file()


def test_export_resumes_and_skips_complete_files(tmp_path, monkeypatch, capsys):
    d = make_dataset(tmp_path / "d", n=12, classes=3, max_count=4)
    out = tmp_path / "out"
    real = export_module.atomic_write_bytes
    calls: list[str] = []

    def interrupted(path, data, **kw):
        calls.append(Path(path).name)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real(path, data, **kw)

    monkeypatch.setattr(export_module, "atomic_write_bytes", interrupted)
    assert main(["export", str(d), "--imagefolder", str(out)]) == 130
    assert len(_files(out)) == 5 and json.loads((out / EXPORT_MARKER).read_text())["complete"] is False
    stale = out / "000_class_0" / ".k0099.png.tmp-1-ab"
    stale.write_bytes(b"x")
    calls.clear()
    monkeypatch.setattr(export_module, "atomic_write_bytes", lambda p, data, **kw: calls.append(Path(p).name) or real(p, data, **kw))
    capsys.readouterr()
    assert main(["export", str(d), "--imagefolder", str(out)]) == 0
    assert "wrote 7 images" in capsys.readouterr().out and len(calls) == 7
    assert not stale.exists()
    reference = tmp_path / "ref"
    assert main(["export", str(d), "--imagefolder", str(reference)]) == 0
    assert _files(out) == _files(reference)
    # complete: a rerun reads no shard at all
    monkeypatch.setattr(export_module, "iter_samples", lambda *a, **k: pytest.fail("read a shard"))
    assert main(["export", str(d), "--imagefolder", str(out)]) == 0


def test_export_refuses_a_foreign_or_other_output(tmp_path, capsys):
    d = make_dataset(tmp_path / "d", n=4)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert main(["export", str(d), "--imagefolder", str(busy)]) == 2
    err = capsys.readouterr().err
    assert "not an earlier synth-shards export" in err and err.count("\n") == 1
    assert sorted(os.listdir(busy)) == ["notes.txt"]
    other = make_dataset(tmp_path / "other", n=4, classes=2)
    out = tmp_path / "out"
    assert main(["export", str(other), "--imagefolder", str(out)]) == 0
    assert main(["export", str(d), "--imagefolder", str(out)]) == 2
    assert "export of other classes" in capsys.readouterr().err
    (d / "dataset.json").unlink()
    assert main(["export", str(d), "--imagefolder", str(tmp_path / "new")]) == 2
    assert "dataset.json is missing" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_export_from_s3(s3_server, tmp_path):
    d = make_dataset(tmp_path / "d", n=6, max_count=4)
    url = s3_server.url("d")
    s3_server.upload(d, url)
    out, local = tmp_path / "from-s3", tmp_path / "from-local"
    assert main(["export", url, "--imagefolder", str(out)]) == 0
    assert main(["export", str(d), "--imagefolder", str(local)]) == 0
    assert _files(out) == _files(local) and len(_files(out)) == 6
