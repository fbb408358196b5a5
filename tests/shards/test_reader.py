import logging

import pytest

from synthdata.shards import CorruptShardError, ReadStats, iter_samples, list_shards, sidecar_path

from ._helpers import flip_byte_in_member, make_dataset


def test_iter_samples_reads_only_complete_shards(tmp_path):
    make_dataset(tmp_path, n=10, max_count=4)
    shards = list_shards(tmp_path)
    sidecar_path(shards[1]).unlink()  # now incomplete: invisible to readers
    keys = [s.key for s in iter_samples(tmp_path)]
    assert keys == [f"k{i:04d}" for i in (0, 1, 2, 3, 8, 9)]


def test_corrupt_shard_raise_or_skip(tmp_path, caplog):
    make_dataset(tmp_path, n=10, max_count=4)
    bad = list_shards(tmp_path)[1]
    flip_byte_in_member(bad)
    with pytest.raises(CorruptShardError, match=bad.name):
        list(iter_samples(tmp_path))
    stats = ReadStats()
    with caplog.at_level(logging.WARNING):
        keys = [s.key for s in iter_samples(tmp_path, on_error="skip", stats=stats)]
    # nothing at all from the corrupt shard, not even its intact samples
    assert keys == [f"k{i:04d}" for i in (0, 1, 2, 3, 8, 9)]
    assert stats.skipped_shards == [bad.name] and stats.samples == 6 and stats.shards_read == 2
    assert bad.name in caplog.text


def test_truncated_shard_without_checksum_never_yields_partial_samples(tmp_path):
    make_dataset(tmp_path, n=4, max_count=4)
    shard = list_shards(tmp_path)[0]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    stats = ReadStats()
    got = list(iter_samples(tmp_path, on_error="skip", verify_checksum=False, stats=stats))
    assert stats.skipped_shards == [shard.name]
    for s in got:  # whatever came before the cut is whole
        assert s.image.size == (16, 16) and isinstance(s.cls, int) and "i" in s.meta
    with pytest.raises(CorruptShardError):
        list(iter_samples(tmp_path, verify_checksum=False))


def test_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list(iter_samples(tmp_path / "nope"))
    with pytest.raises(ValueError, match="on_error"):
        list(iter_samples(tmp_path, on_error="ignore"))  # type: ignore[arg-type]


def test_read_sidecar_takes_a_path_a_file_url_or_a_url(tmp_path):
    import json

    from synthdata.shards import storage
    from synthdata.shards.resume import read_sidecar

    make_dataset(tmp_path, n=4)
    shard = list_shards(tmp_path)[0]
    expected = json.loads(sidecar_path(shard).read_text())
    url = f"memory://reader-{tmp_path.name}/{shard.name}"
    storage.write_bytes(url[: -len(".tar")] + ".idx.json", sidecar_path(shard).read_bytes())
    assert read_sidecar(shard) == read_sidecar(str(shard)) == read_sidecar(f"file://{shard}") == expected
    assert read_sidecar(url) == expected
    assert read_sidecar(tmp_path / "none-000-000000.tar") is None
    assert read_sidecar(f"memory://reader-{tmp_path.name}/none-000-000000.tar") is None
    sidecar_path(shard).write_text("{broken")
    assert read_sidecar(shard) is None
