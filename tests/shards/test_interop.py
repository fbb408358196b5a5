"""Shards are plain WebDataset: readable by webdataset, by timm's reader and by tar."""

import shutil
import subprocess

import pytest
import webdataset as wds

from synthdata.shards import list_shards

from ._helpers import make_dataset


def test_plain_webdataset_reads_shards(tmp_path):
    make_dataset(tmp_path, n=6, max_count=4)
    urls = [str(p) for p in list_shards(tmp_path)]
    ds = wds.WebDataset(urls, shardshuffle=False).decode("pil").to_tuple("png", "cls", "json", "__key__")
    items = list(ds)
    assert [key for *_, key in items] == [f"k{i:04d}" for i in range(6)]
    assert items[4][1] == 1 and items[4][2] == {"i": 4} and items[4][0].size == (16, 16)


def test_timm_wds_reader_reads_shards(tmp_path):
    pytest.importorskip("timm")
    from timm.data.readers.reader_wds import ReaderWds

    make_dataset(tmp_path, n=6, max_count=4)
    names = [p.name for p in list_shards(tmp_path)]
    split = f"t-000-{{000000..{len(names) - 1:06d}}}.tar|6"
    reader = ReaderWds(root=str(tmp_path), split=split, is_training=False)
    items = list(reader)
    assert len(items) == 6
    assert sorted(int(target) for _, target in items) == [0, 0, 1, 1, 2, 2]


@pytest.mark.skipif(shutil.which("tar") is None, reason="no tar binary")
def test_tar_lists_members(tmp_path):
    make_dataset(tmp_path, n=2, max_count=4)
    shard = list_shards(tmp_path)[0]
    out = subprocess.run(
        ["tar", "-tf", str(shard)], check=True, capture_output=True, text=True
    ).stdout.split()
    assert out == ["k0000.cls", "k0000.json", "k0000.png", "k0001.cls", "k0001.json", "k0001.png"]
