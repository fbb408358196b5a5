"""The files other tools look for (timm's _info.json, the wids index, the Hugging Face card): their content,
and timm, wids, stock webdataset and datasets.load_dataset reading shard directories with no tweak."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from synthdata.shards import (
    INTEROP_FILES,
    DatasetInfo,
    Sample,
    ShardDataset,
    ShardWriter,
    iter_samples,
    list_shards,
    sidecar_path,
    write_dataset_json,
    write_interop_files,
)
from synthdata.shards.interop import HF_CARD, TIMM_INFO, WIDS_INDEX, WRITTEN_BY, yaml_quote
from synthdata.tools.shards import main

from ._helpers import rgb

ODD_CLASSES = ['a: "quoted" #not a comment', "ünïcode 猫", "line\nbreak", "- dash", "\u2028sep\x85", "{}[]"]


def _demo(tmp_path: Path) -> Path:
    d = tmp_path / "demo"
    assert main(["make-demo", str(d), "--num-classes", "3", "--images-per-class", "8", "--size", "16", "--shard-size", "10"]) == 0
    return d


def _filtered_like(tmp_path: Path) -> Path:
    """Shards as synth-filter writes them: metadata with null fields and scores, an extra json member."""
    d = tmp_path / "filtered"
    with ShardWriter(d, prefix="filtered", max_count=4) as w:
        for i in range(10):
            meta = {"class_name": ODD_CLASSES[i % 6], "prompt": None, "filter": {"score": 0.5, "rank": None}}
            w.write(Sample(f"g{i:04d}", rgb(i), i % 6, meta, {"scores.json": {"clip": [0.1, 0.9]}}))
    ds = ShardDataset.open(d, read_info=False)
    write_interop_files(ds, classes=ODD_CLASSES, name="filtered")
    write_dataset_json(d, DatasetInfo(classes=ODD_CLASSES, name="filtered", producer="synth-filter"))
    return d


def _expected(d: Path) -> list[tuple[str, int]]:
    return [(s.key, s.cls) for s in iter_samples(d, decode=False)]


def test_make_demo_writes_the_interop_files_before_dataset_json(tmp_path):
    d = _demo(tmp_path)
    for name in INTEROP_FILES:
        assert (d / name).stat().st_mtime_ns <= (d / "dataset.json").stat().st_mtime_ns
    info = json.loads((d / TIMM_INFO).read_text())
    names = [p.name for p in list_shards(d)]
    assert info["splits"]["train"] == {
        "name": "train",
        "num_samples": 24,
        "filenames": names,
        "shard_lengths": [10, 10, 4],
    }
    assert info["num_classes"] == 3 and info["classes"] == ["red stripes", "orange columns", "yellow diagonals"]
    index = json.loads((d / WIDS_INDEX).read_text())
    assert index["__kind__"] == "wids-shard-index-v1" and index["wids_version"] == 1
    assert index["shardlist"] == [
        {"url": n, "nsamples": c, "filesize": (d / n).stat().st_size} for n, c in zip(names, [10, 10, 4], strict=True)
    ]


def test_files_describe_only_the_complete_shards_and_leave_foreign_ones(tmp_path):
    d = _demo(tmp_path)
    incomplete = list_shards(d)[1]
    sidecar_path(incomplete).unlink()
    (d / HF_CARD).write_text("# my own card\n")
    result = write_interop_files(ShardDataset.open(d))
    assert result.kept == (str(d / HF_CARD),) and (d / HF_CARD).read_text() == "# my own card\n"
    assert sorted(result.written) == sorted(str(d / n) for n in (TIMM_INFO, WIDS_INDEX))
    info = json.loads((d / TIMM_INFO).read_text())
    assert incomplete.name not in info["splits"]["train"]["filenames"]
    assert info["splits"]["train"]["num_samples"] == 14
    assert [s["url"] for s in json.loads((d / WIDS_INDEX).read_text())["shardlist"]] == [
        p.name for p in list_shards(d)
    ]
    # a file of ours is rewritten: a foreign one only if it carries our mark
    (d / HF_CARD).write_text(f"---\n# written_by: {WRITTEN_BY}\n---\nold\n")
    assert str(d / HF_CARD) in write_interop_files(ShardDataset.open(d)).written
    assert incomplete.name not in (d / HF_CARD).read_text()


@given(st.text(max_size=30))
def test_yaml_quote_reads_back_exactly(text):
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load(f"k: {yaml_quote(text)}") == {"k": text}


def test_card_front_matter_parses_with_odd_class_names(tmp_path):
    yaml = pytest.importorskip("yaml")
    d = _filtered_like(tmp_path)
    front = (d / HF_CARD).read_text().split("---\n")[1]
    meta = yaml.safe_load(front)
    assert meta["configs"][0]["data_files"][0]["path"] == [p.name for p in list_shards(d)]
    features = meta["dataset_info"]["features"]
    assert [f["name"] for f in features] == ["png", "cls"]
    assert features[1]["dtype"]["class_label"]["names"] == {str(i): c for i, c in enumerate(ODD_CLASSES)}


@pytest.mark.parametrize("builder", [_demo, _filtered_like])
def test_timm_create_dataset_reads_with_no_brace_split(builder, tmp_path):
    timm_data = pytest.importorskip("timm.data")
    d = builder(tmp_path)
    expected = Counter(c for _, c in _expected(d))
    # timm 1.0 takes the shard directory as root= (train.py's --data-dir); the name after wds/ is free
    ds = timm_data.create_dataset("wds/synthetic", root=str(d), split="train")
    items = list(ds)
    assert Counter(int(t) for _, t in items) == expected
    assert items[0][0].size == (16, 16)


@pytest.mark.parametrize("builder", [_demo, _filtered_like])
def test_wids_reads_the_shard_index(builder, tmp_path):
    wids = pytest.importorskip("wids")
    d = builder(tmp_path)
    ds = wids.ShardListDataset(str(d / WIDS_INDEX), cache_dir=str(tmp_path / "wids-cache"), transformations=[])
    got = [(ds[i]["__key__"], int(ds[i][".cls"].getvalue())) for i in range(len(ds))]
    assert got == _expected(d)
    with Image.open(ds[len(ds) - 1][".png"]) as image:
        assert image.size == (16, 16)


@pytest.mark.parametrize("builder", [_demo, _filtered_like])
def test_stock_webdataset_reads_brace_and_list(builder, tmp_path):
    d = builder(tmp_path)
    names = json.loads((d / TIMM_INFO).read_text())["splits"]["train"]["filenames"]
    prefix = names[0].rsplit("-", 1)[0]
    brace = str(d / f"{prefix}-{{000000..{len(names) - 1:06d}}}.tar")
    for urls in (brace, [str(d / n) for n in names]):
        ds = wds.WebDataset(urls, shardshuffle=False).decode("pil").to_tuple("__key__", "cls", "png")
        items = list(ds)
        assert [(k, c) for k, c, _ in items] == _expected(d)


@pytest.mark.parametrize("builder", [_demo, _filtered_like])
def test_hugging_face_load_dataset_gives_images_and_class_labels(builder, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    d = builder(tmp_path)
    classes = json.loads((d / "dataset.json").read_text())["classes"]
    ds = datasets.load_dataset(str(d), cache_dir=str(tmp_path / "hf-cache"))["train"]
    assert list(ds.features) == ["png", "cls"]
    assert ds.features["cls"].names == classes
    assert ds["cls"] == [c for _, c in _expected(d)]
    first = next(iter_samples(d))
    assert np.array_equal(np.asarray(ds[0]["png"].convert("RGB")), np.asarray(first.image))


def test_one_epoch_of_timm_training_on_the_shards(tmp_path):
    """timm's own loader and training pieces over create_dataset("wds/...") for one epoch.

    timm's train.py is not in the timm wheel; this runs the same calls it makes (create_dataset with
    is_training, create_loader, create_model, create_optimizer_v2, a loss per batch).
    """
    timm = pytest.importorskip("timm")
    import torch
    from timm.data import create_dataset, create_loader
    from timm.optim import create_optimizer_v2

    d = _demo(tmp_path)
    ds = create_dataset("wds/demo", root=str(d), split="train", is_training=True, batch_size=4, seed=0)
    loader = create_loader(
        ds,
        input_size=(3, 16, 16),
        batch_size=4,
        is_training=True,
        use_prefetcher=False,
        num_workers=0,
        device=torch.device("cpu"),
        persistent_workers=False,
    )
    model = timm.create_model("test_resnet", num_classes=3)
    optimizer = create_optimizer_v2(model, "sgd", lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    ds.set_epoch(0)
    seen: Counter[int] = Counter()
    losses = []
    for images, targets in loader:
        assert images.shape[1:] == (3, 16, 16)
        loss = loss_fn(model(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen.update(targets.tolist())
        losses.append(loss.item())
    assert seen == Counter({0: 8, 1: 8, 2: 8})  # one epoch: every sample once
    assert len(losses) == 6 and all(np.isfinite(losses))
