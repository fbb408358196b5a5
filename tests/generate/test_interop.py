"""The files other tools look for, written by generate just before dataset.json: timm, wids and Hugging Face
read a generated directory as it is (the readers themselves are covered by tests/shards/test_interop_files.py)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from synthdata.shards import DATASET_JSON, INTEROP_FILES, iter_samples
from synthdata.shards.interop import TIMM_INFO, WIDS_INDEX, WRITTEN_BY

from ._helpers import CLASSES
from .test_runner import _run


@pytest.fixture
def generated(tmp_path):
    d = tmp_path / "gen"
    _run(d)  # 12 samples of 3 classes in shards of 5, 5 and 2
    return d


def test_written_before_dataset_json_and_describing_the_shards(generated):
    d = generated
    for name in INTEROP_FILES:
        assert (d / name).stat().st_mtime_ns <= (d / DATASET_JSON).stat().st_mtime_ns
        assert WRITTEN_BY in (d / name).read_text()
    info = json.loads((d / TIMM_INFO).read_text())
    assert info["name"] == "gen" and info["classes"] == CLASSES
    assert info["splits"]["train"]["filenames"] == [f"gen-000-00000{i}.tar" for i in range(3)]
    assert info["splits"]["train"]["shard_lengths"] == [5, 5, 2]
    index = json.loads((d / WIDS_INDEX).read_text())
    assert [s["nsamples"] for s in index["shardlist"]] == [5, 5, 2]


def test_timm_wids_and_hugging_face_read_it(generated, tmp_path, monkeypatch):
    d = generated
    expected = [(s.key, s.cls) for s in iter_samples(d, decode=False)]
    timm_data = pytest.importorskip("timm.data")
    ds = timm_data.create_dataset("wds/gen", root=str(d), split="train")
    assert Counter(int(t) for _, t in ds) == Counter(c for _, c in expected)
    wids = pytest.importorskip("wids")
    ds = wids.ShardListDataset(str(d / WIDS_INDEX), cache_dir=str(tmp_path / "wids"), transformations=[])
    assert [(ds[i]["__key__"], int(ds[i][".cls"].getvalue())) for i in range(len(ds))] == expected
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(str(d), cache_dir=str(tmp_path / "hf"))["train"]
    assert list(ds.features) == ["png", "cls"] and ds.features["cls"].names == CLASSES
    assert ds["cls"] == [c for _, c in expected]


def test_the_runner_scans_tolerate_them_and_a_new_plan_drops_them(generated):
    d = generated
    s = _run(d)  # a rerun: resume and the completeness check see the interop files and ignore them
    assert (s.images, s.shards_resumed, s.dataset_complete) == (0, 3, True)
    (d / "README.md").write_text("my own card\n")  # someone else's file of that name is kept
    s = _run(d, images_per_prompt=1)  # 6 items: shard 1 redone, 2 pruned, the files rewritten for 2 shards
    assert s.dataset_complete and not (d / "gen-000-000002.tar").exists()
    assert (d / "README.md").read_text() == "my own card\n"
    info = json.loads((d / TIMM_INFO).read_text())
    assert info["splits"]["train"]["shard_lengths"] == [5, 1]
