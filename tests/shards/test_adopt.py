"""synth-shards index: adopting WebDataset shards written by other tools, locally and on S3, resumably."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from synthdata.shards import ShardDataset, dataset_stats, iter_samples, verify_dataset
from synthdata.shards import adopt as adopt_module
from synthdata.shards.interop import HF_CARD, TIMM_INFO, WIDS_INDEX
from synthdata.tools.shards import main


def _jpg(i: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), (i * 37) % 256, dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def foreign_shards(
    d: Path, n: int = 12, per_shard: int = 5, *, label: str = "cls", pattern: str = "train-%04d.tar"
) -> Path:
    """Shards from stock ``webdataset.ShardWriter``: jpg + cls (no json), or the label only in json."""
    d.mkdir(parents=True, exist_ok=True)
    with wds.ShardWriter(str(d / pattern), maxcount=per_shard, verbose=0) as w:
        for i in range(n):
            sample = {"__key__": f"s{i:03d}", "jpg": _jpg(i)}
            if label == "cls":
                sample["cls"] = str(i % 3).encode()
            elif label == "json-int":
                sample["json"] = json.dumps({"label": i % 3, "other": None}).encode()
            elif label == "json-name":
                sample["json"] = json.dumps({"label": ["cat", "dog", "eel"][i % 3]}).encode()
            w.write(sample)
    return d


def _digests(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.glob("*.tar"))}


def test_index_adopts_plain_webdataset_shards_without_rewriting_them(tmp_path, capsys):
    d = foreign_shards(tmp_path / "d")
    before = _digests(d)
    assert main(["index", str(d)]) == 0
    out = capsys.readouterr().out
    assert "indexed train-0000.tar (5 samples)" in out and "3 shards indexed now" in out
    assert _digests(d) == before
    assert main(["verify", str(d)]) == 0
    assert "3 shards, 12 samples: OK" in capsys.readouterr().out
    ds = ShardDataset.open(d, require_info=True)
    assert [s.count for s in ds.shards] == [5, 5, 2] and ds.num_samples == 12
    assert ds.classes == ["0", "1", "2"] and ds.class_counts() == {0: 4, 1: 4, 2: 4}
    assert ds.info is not None and ds.info.producer == "synth-shards index"
    assert all(s.image_formats == ("jpg",) for s in ds.shards)
    samples = list(iter_samples(d))
    assert [(s.key, s.cls, s.meta) for s in samples[:2]] == [("s000", 0, {}), ("s001", 1, {})]
    assert {TIMM_INFO, WIDS_INDEX, HF_CARD} <= {p.name for p in d.iterdir()}
    assert json.loads((d / TIMM_INFO).read_text())["splits"]["train"]["num_samples"] == 12


def test_index_with_a_class_list_names_the_classes(tmp_path, capsys):
    d = foreign_shards(tmp_path / "d")
    classes = tmp_path / "classes.txt"
    classes.write_text("cat\ndog\neel\n")
    assert main(["index", str(d), "--classes", str(classes), "--name", "pets"]) == 0
    ds = ShardDataset.open(d, require_info=True)
    assert ds.classes == ["cat", "dog", "eel"] and ds.info.name == "pets"
    assert dataset_stats(d).per_class == {0: 4, 1: 4, 2: 4}
    short = tmp_path / "short.txt"
    short.write_text("cat\ndog\n")
    capsys.readouterr()
    assert main(["index", str(d), "--classes", str(short)]) == 2
    err = capsys.readouterr().err
    assert "class index 2" in err and "2 names" in err and err.count("\n") == 1


def test_hugging_face_and_timm_read_adopted_jpg_shards(tmp_path):
    datasets = pytest.importorskip("datasets")
    timm_data = pytest.importorskip("timm.data")
    d = foreign_shards(tmp_path / "d", pattern="train[a]-%04d.tar")  # '[' must not act as a glob
    assert main(["index", str(d)]) == 0
    ds = datasets.load_dataset(str(d), cache_dir=str(tmp_path / "hf"))["train"]
    assert list(ds.features) == ["jpg", "cls"] and ds.features["cls"].names == ["0", "1", "2"]
    assert ds["cls"] == [i % 3 for i in range(12)]
    items = list(timm_data.create_dataset("wds/x", root=str(d), split="train"))
    assert sorted(int(t) for _, t in items) == sorted(i % 3 for i in range(12))


def test_index_resumes_after_an_interrupted_run(tmp_path, monkeypatch, capsys):
    d = foreign_shards(tmp_path / "d", n=15)
    real = adopt_module.scan_shard
    scanned: list[str] = []

    def failing(location, rule):
        scanned.append(Path(location).name)
        if len(scanned) == 2:
            raise KeyboardInterrupt
        return real(location, rule)

    monkeypatch.setattr(adopt_module, "scan_shard", failing)
    assert main(["index", str(d)]) == 130
    assert (d / "train-0000.idx.json").exists() and not (d / "train-0001.idx.json").exists()
    assert not (d / "dataset.json").exists()  # not complete: nothing claims the directory is
    scanned.clear()
    monkeypatch.setattr(adopt_module, "scan_shard", lambda loc, rule: scanned.append(Path(loc).name) or real(loc, rule))
    capsys.readouterr()
    assert main(["index", str(d)]) == 0
    assert scanned == ["train-0001.tar", "train-0002.tar"]  # the first one is not read again
    assert verify_dataset(d).ok and ShardDataset.open(d).num_samples == 15
    split = json.loads((d / TIMM_INFO).read_text())["splits"]["train"]  # the earlier shard and the new ones
    assert split["filenames"] == ["train-0000.tar", "train-0001.tar", "train-0002.tar"]
    assert split["shard_lengths"] == [5, 5, 5] and split["num_samples"] == 15
    scanned.clear()
    assert main(["index", str(d)]) == 0 and scanned == []


def test_index_and_verify_on_s3(s3_server, tmp_path, capsys):
    d = foreign_shards(tmp_path / "d")
    url = s3_server.url("foreign/d")
    s3_server.upload(d, url)
    assert main(["index", url]) == 0
    names = s3_server.listing(url)
    assert {"train-0000.idx.json", "train-0002.idx.json", "dataset.json", TIMM_INFO, WIDS_INDEX, HF_CARD} <= set(names)
    capsys.readouterr()
    assert main(["verify", url]) == 0
    assert f"{url}: 3 shards, 12 samples: OK" in capsys.readouterr().out
    ds = ShardDataset.open(url, require_info=True)
    assert ds.num_samples == 12 and ds.class_counts() == {0: 4, 1: 4, 2: 4}
    # the same sidecars as indexing the local copy
    assert main(["index", str(d)]) == 0
    local = ShardDataset.open(d)
    assert [s.sidecar for s in ds.shards] == [s.sidecar for s in local.shards]


def test_samples_without_an_image_or_label_are_refused_naming_the_shard(tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    with wds.TarWriter(str(d / "bad.tar")) as w:
        w.write({"__key__": "a", "jpg": _jpg(0), "cls": b"0"})
        w.write({"__key__": "b", "txt": b"no image", "cls": b"1"})
        w.write({"__key__": "c", "jpg": _jpg(2)})
        w.write({"__key__": "d", "jpg": _jpg(3)})
    assert main(["index", str(d)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.tar" in err
    assert "1 without an image" in err and "2 without a label" in err and "of 4 samples" in err
    assert sorted(p.name for p in d.iterdir()) == ["bad.tar"]


def test_labels_from_a_json_field(tmp_path, capsys):
    timm_data = pytest.importorskip("timm.data")
    d = foreign_shards(tmp_path / "d", label="json-int")
    assert main(["index", str(d), "--label-field", "label"]) == 0
    assert "json field 'label'" in capsys.readouterr().out
    ds = ShardDataset.open(d)
    assert ds.class_counts() == {0: 4, 1: 4, 2: 4} and {s.labels for s in ds.shards} == {"json:label"}
    assert verify_dataset(d).ok
    assert [s.cls for s in iter_samples(d)] == [i % 3 for i in range(12)]
    info = json.loads((d / TIMM_INFO).read_text())
    assert info["splits"]["train"]["alt_label"] == "label"
    items = list(timm_data.create_dataset("wds/x", root=str(d), split="train"))
    assert sorted(int(t) for _, t in items) == sorted(i % 3 for i in range(12))
    # another label source than the shards indexed before is refused
    (d / "train-0002.idx.json").unlink()
    assert main(["index", str(d)]) == 2
    assert "indexed with labels from 'json:label'" in capsys.readouterr().err


def test_class_names_in_a_json_field_need_the_class_list(tmp_path, capsys):
    datasets = pytest.importorskip("datasets")
    d = foreign_shards(tmp_path / "d", label="json-name")
    assert main(["index", str(d), "--label-field", "label"]) == 2
    err = capsys.readouterr().err
    assert "class name 'cat' is not in the class list" in err and "--classes" in err
    classes = tmp_path / "c.txt"
    classes.write_text("eel\ncat\ndog\n")
    assert main(["index", str(d), "--label-field", "label", "--classes", str(classes)]) == 0
    ds = ShardDataset.open(d, require_info=True)
    assert ds.classes == ["eel", "cat", "dog"] and {s.labels for s in ds.shards} == {"json-names:label"}
    assert [s.cls for s in iter_samples(d)] == [[1, 2, 0][i % 3] for i in range(12)]
    assert "alt_label" not in json.loads((d / TIMM_INFO).read_text())["splits"]["train"]
    hf = datasets.load_dataset(str(d), cache_dir=str(tmp_path / "hf"))["train"]
    assert list(hf.features) == ["jpg", "json"]
    assert [row["label"] for row in hf["json"]] == [[1, 2, 0][i % 3] for i in range(12)]
    assert hf.features["json"]["label"].names == ["eel", "cat", "dog"]
    other = tmp_path / "other.txt"
    other.write_text("cat\ndog\neel\n")
    assert main(["index", str(d), "--label-field", "label", "--classes", str(other)]) == 2
    assert "another class list" in capsys.readouterr().err


def test_a_synthdata_output_is_not_adopted_but_gets_the_interop_files(tmp_path, capsys):
    d = tmp_path / "demo"
    assert main(["make-demo", str(d), "--num-classes", "2", "--images-per-class", "3"]) == 0
    for name in (TIMM_INFO, WIDS_INDEX, HF_CARD):
        (d / name).unlink()
    info = (d / "dataset.json").read_bytes()
    assert main(["index", str(d)]) == 0
    assert (d / "dataset.json").read_bytes() == info  # still make-demo's, with its config
    assert all((d / n).exists() for n in (TIMM_INFO, WIDS_INDEX, HF_CARD))
    (d / "demo-000-000000.idx.json").unlink()  # now an incomplete shard of make-demo's
    capsys.readouterr()
    assert main(["index", str(d)]) == 2
    err = capsys.readouterr().err
    assert "synth-shards make-demo wrote these shards" in err and "demo-000-000000.tar" in err
    assert not (d / "demo-000-000000.idx.json").exists()


def test_index_refuses_a_directory_without_tars(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["index", str(tmp_path / "empty")]) == 2
    assert "no *.tar shards" in capsys.readouterr().err
    assert main(["index", str(tmp_path / "missing")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_index_refuses_a_sidecar_without_its_tar(tmp_path, capsys):
    d = foreign_shards(tmp_path / "d")
    assert main(["index", str(d)]) == 0
    (d / "train-0001.tar").unlink()
    capsys.readouterr()
    assert main(["index", str(d)]) == 2
    err = capsys.readouterr().err
    assert "train-0001.idx.json describes a tar that is not there" in err


def test_shards_indexed_later_take_their_place_in_name_order(tmp_path, capsys):
    d = foreign_shards(tmp_path / "d", n=15)
    aside = tmp_path / "aside"
    aside.mkdir()
    for name in ("train-0000.tar", "train-0001.tar"):
        (d / name).rename(aside / name)
    assert main(["index", str(d)]) == 0  # train-0002 only
    for name in ("train-0000.tar", "train-0001.tar"):
        (aside / name).rename(d / name)
    assert main(["index", str(d)]) == 0
    names = ["train-0000.tar", "train-0001.tar", "train-0002.tar"]
    assert json.loads((d / TIMM_INFO).read_text())["splits"]["train"]["filenames"] == names
    assert [s["url"] for s in json.loads((d / WIDS_INDEX).read_text())["shardlist"]] == names
    assert "3 in all, 15 samples" in capsys.readouterr().out
