import warnings

import pytest
import torch
from PIL import Image

from synthdata.shards import ErrorCounter, list_shards, make_demo, wds_pipeline

from ._helpers import flip_byte_in_member, make_dataset


def _keys(pipeline):
    return [key for _, _, key in pipeline]


def test_pipeline_yields_image_and_class(tmp_path):
    make_dataset(tmp_path, n=10, max_count=4)
    items = list(wds_pipeline(tmp_path, shuffle=0))
    assert len(items) == 10
    image, cls = items[0]
    assert isinstance(image, Image.Image) and cls == 0
    meta_items = list(wds_pipeline(tmp_path, shuffle=0, with_meta=True, with_key=True))
    assert meta_items[3][2] == {"i": 3} and meta_items[3][3] == "k0003"


def test_shuffle_is_seeded(tmp_path):
    make_dataset(tmp_path, n=24, max_count=4)
    a = _keys(wds_pipeline(tmp_path, shuffle=20, seed=1, with_key=True))
    b = _keys(wds_pipeline(tmp_path, shuffle=20, seed=1, with_key=True))
    c = _keys(wds_pipeline(tmp_path, shuffle=20, seed=2, with_key=True))
    assert a == b, "the same seed gives the same sample order"
    assert a != c, "another seed gives another order"
    assert sorted(a) == sorted(c) == [f"k{i:04d}" for i in range(24)]


def test_each_pass_of_one_pipeline_reshuffles_reproducibly(tmp_path):
    make_dataset(tmp_path, n=24, max_count=4)
    pipeline = wds_pipeline(tmp_path, shuffle=20, seed=1, with_key=True)
    first, second = _keys(pipeline), _keys(pipeline)
    assert first != second
    again = wds_pipeline(tmp_path, shuffle=20, seed=1, with_key=True)
    assert [_keys(again), _keys(again)] == [first, second]


def test_split_by_node_gives_disjoint_shards(tmp_path, monkeypatch):
    make_dataset(tmp_path, n=16, max_count=2)  # 8 shards
    seen = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        seen.append(set(_keys(wds_pipeline(tmp_path, shuffle=0, with_key=True))))
    assert seen[0].isdisjoint(seen[1])
    assert len(seen[0] | seen[1]) == 16 and len(seen[0]) == 8


def test_dataloader_workers_split_shards(tmp_path):
    make_dataset(tmp_path, n=16, max_count=2)
    pipeline = wds_pipeline(tmp_path, shuffle=0, with_key=True, transform=lambda im: torch.zeros(1))
    loader = torch.utils.data.DataLoader(pipeline, batch_size=None, num_workers=2)
    keys = [key for _, _, key in loader]
    assert sorted(keys) == [f"k{i:04d}" for i in range(16)]  # each sample once across workers


def test_resampled_epoch_length(tmp_path):
    make_demo(tmp_path, classes=2, per_class=4, seed=0, shard_size=2)
    items = list(wds_pipeline(tmp_path, resampled=True, epoch_length=13, shuffle=0))
    assert len(items) == 13
    batches = list(
        wds_pipeline(
            tmp_path,
            resampled=True,
            epoch_length=3,
            batch_size=4,
            shuffle=0,
            transform=lambda im: torch.zeros(3),
        )
    )
    assert len(batches) == 3 and batches[0][0].shape == (4, 3)
    with pytest.raises(ValueError, match="epoch_length"):
        wds_pipeline(tmp_path, resampled=True)


def test_corrupt_samples_warn_and_count(tmp_path):
    make_dataset(tmp_path, n=8, max_count=4)
    flip_byte_in_member(list_shards(tmp_path)[0], where=0.6)
    errors = ErrorCounter()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        items = list(wds_pipeline(tmp_path, shuffle=0, on_error="warn", errors=errors))
    assert errors.count >= 1 and len(items) == 8 - errors.count
    with pytest.raises(Exception):  # noqa: B017 - PIL's error type varies with the damage
        list(wds_pipeline(tmp_path, shuffle=0, on_error="raise"))


def test_empty_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no complete shards"):
        wds_pipeline(tmp_path)


def test_every_shard_file_is_closed_after_reading(tmp_path):
    """Good, truncated and partly read shards: each file is closed by the pipeline, none left to the GC."""
    import gc

    make_dataset(tmp_path, n=12, max_count=4)
    shards = list_shards(tmp_path)
    shards[1].write_bytes(shards[1].read_bytes()[:700])  # cut inside the first member
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = list(wds_pipeline(tmp_path, shuffle=0, on_error="warn"))
        stream = iter(wds_pipeline(tmp_path, shuffle=0))
        next(stream)
        stream.close()  # stopped inside a shard
        del stream
        gc.collect()
    assert len(items) == 8
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]
