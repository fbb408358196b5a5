"""ShardDataset: one validated view of a shard directory's index (dataset.json + sidecars)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthdata.shards import (
    CorruptShardError,
    DatasetInfoError,
    ShardDataset,
    iter_samples,
    list_shards,
    storage,
)
from synthdata.shards.layout import sidecar_path

from ._helpers import make_dataset


def test_index_matches_the_tars(tmp_path: Path) -> None:
    make_dataset(tmp_path, n=10, classes=3, max_count=4)
    ds = ShardDataset.open(tmp_path)
    assert [s.name for s in ds.shards] == [p.name for p in list_shards(tmp_path)]
    assert ds.urls == [str(p) for p in list_shards(tmp_path)]
    assert ds.num_samples == 10 and [s.count for s in ds.shards] == [4, 4, 2]
    assert ds.classes == ["class 0", "class 1", "class 2"]
    samples = list(iter_samples(tmp_path, decode=False))
    assert ds.key_index() == {s.key: (s.shard, s.cls) for s in samples}
    assert ds.class_counts() == {0: 4, 1: 3, 2: 3}
    assert ds.shard(ds.shards[1].name).keys == tuple(s.key for s in samples[4:8])


def test_shards_without_sidecar_are_not_listed(tmp_path: Path) -> None:
    make_dataset(tmp_path, n=8, max_count=4)
    first = list_shards(tmp_path)[0]
    sidecar_path(first).unlink()
    ds = ShardDataset.open(tmp_path)
    assert [s.name for s in ds.shards] == [list_shards(tmp_path)[0].name] and ds.num_samples == 4


def test_missing_dataset_json_is_allowed_unless_required(tmp_path: Path) -> None:
    make_dataset(tmp_path, n=4)
    (tmp_path / "dataset.json").unlink()
    assert ShardDataset.open(tmp_path).info is None
    with pytest.raises(DatasetInfoError, match=r"dataset\.json is missing"):
        ShardDataset.open(tmp_path, require_info=True)


def test_missing_directory_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"--in .*nope: no such shard directory"):
        ShardDataset.open(tmp_path / "nope", flag="--in")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda o: o.update(count=o["count"] + 1), "disagree"),
        (lambda o: o.update(shard="other-000-000000.tar"), "expected"),
        (lambda o: o["classes"].pop(), "one length"),
        (lambda o: o.update(classes=[-1] * len(o["classes"])), "non-negative"),
    ],
)
def test_inconsistent_sidecar_is_refused(tmp_path: Path, edit, message: str) -> None:
    make_dataset(tmp_path, n=4)
    side = sidecar_path(list_shards(tmp_path)[0])
    obj = json.loads(side.read_text())
    edit(obj)
    side.write_text(json.dumps(obj))
    with pytest.raises(CorruptShardError, match=message):
        ShardDataset.open(tmp_path)


def test_class_index_beyond_the_class_list_is_refused(tmp_path: Path) -> None:
    make_dataset(tmp_path, n=6, classes=3)
    info = json.loads((tmp_path / "dataset.json").read_text())
    info["classes"] = info["classes"][:2]
    (tmp_path / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(CorruptShardError, match=r"class index 2 but dataset\.json has 2 classes"):
        ShardDataset.open(tmp_path)


def test_duplicate_keys_across_shards_are_refused(tmp_path: Path) -> None:
    make_dataset(tmp_path, n=8, max_count=4)
    a, b = (sidecar_path(p) for p in list_shards(tmp_path))
    oa, ob = json.loads(a.read_text()), json.loads(b.read_text())
    ob["keys"][0] = oa["keys"][0]
    b.write_text(json.dumps(ob))
    with pytest.raises(CorruptShardError, match="keys must be unique"):
        ShardDataset.open(tmp_path)


def test_a_brace_pattern_names_some_shards_of_one_directory(tmp_path: Path) -> None:
    make_dataset(tmp_path, n=10, max_count=4)
    names = [p.name for p in list_shards(tmp_path)]  # t-000-000000.tar ... t-000-000002.tar
    ds = ShardDataset.open(f"{tmp_path}/t-000-{{000000..000001}}.tar")
    assert ds.location == str(tmp_path) and [s.name for s in ds.shards] == names[:2]
    assert ds.classes == ["class 0", "class 1", "class 2"] and ds.num_samples == 8
    with pytest.raises(FileNotFoundError, match="not complete"):
        ShardDataset.open(f"{tmp_path}/t-000-{{000000..000005}}.tar")
    with pytest.raises(FileNotFoundError, match="one directory"):
        ShardDataset.open(f"{tmp_path}/{{a,b}}/t-000-000000.tar")


@pytest.mark.parametrize("remote", [False, True], ids=["local", "memory"])
def test_a_sidecar_that_is_not_json_is_refused_by_name(tmp_path: Path, remote: bool) -> None:
    make_dataset(tmp_path / "d", n=8, max_count=4)
    location = str(tmp_path / "d")
    if remote:
        location = f"memory://handle-{tmp_path.name}"
        for p in (tmp_path / "d").iterdir():
            storage.write_bytes(f"{location}/{p.name}", p.read_bytes())
        assert ShardDataset.open(location).key_index() == ShardDataset.open(tmp_path / "d").key_index()
    bad = storage.join(location, sidecar_path(list_shards(tmp_path / "d")[1]).name)
    storage.write_bytes(bad, b"{not json")
    with pytest.raises(CorruptShardError, match=r"t-000-000001\.idx\.json: unreadable sidecar"):
        ShardDataset.open(location)
