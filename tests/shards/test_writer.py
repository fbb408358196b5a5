import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthdata.shards import (
    OutputDirError,
    Sample,
    SampleError,
    ShardWriter,
    iter_samples,
    list_shards,
    sidecar_path,
    write_shard,
)
from synthdata.shards.reader import read_sidecar

from ._helpers import rgb


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp"])
def test_round_trip_formats(tmp_path, fmt):
    images = [rgb(0), Image.fromarray(rgb(1)), rgb(2)]
    with ShardWriter(tmp_path, image_format=fmt, quality=90) as w:
        for i, image in enumerate(images):
            w.write(Sample(f"s{i}", image, i, {"prompt": "a photo of a cat", "i": i}))
    samples = list(iter_samples(tmp_path))
    assert [s.key for s in samples] == ["s0", "s1", "s2"]
    assert [s.cls for s in samples] == [0, 1, 2]
    assert samples[1].meta == {"prompt": "a photo of a cat", "i": 1}
    assert {s.image_ext for s in samples} == {fmt}
    for s, ref in zip(samples, [rgb(0), rgb(1), rgb(2)], strict=True):
        got = np.asarray(s.image)
        if fmt == "png":
            np.testing.assert_array_equal(got, ref)  # lossless
        else:
            assert got.shape == ref.shape


def test_encoded_bytes_pass_through_unchanged(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(rgb(3)).save(buf, format="JPEG", quality=80)
    with ShardWriter(tmp_path) as w:  # png writer, but bytes keep their own format
        w.write({"key": "b0", "image": buf.getvalue(), "cls": 1})
    (s,) = iter_samples(tmp_path, decode=False)
    assert s.image == buf.getvalue() and s.image_ext == "jpg"


def test_count_and_size_bounds(tmp_path):
    with ShardWriter(tmp_path / "c", max_count=3) as w:
        w.write_all(Sample(f"k{i}", rgb(i), 0) for i in range(10))
    assert [i.count for i in w.shards] == [3, 3, 3, 1]
    assert [p.name for p in list_shards(tmp_path / "c")] == [f"shard-000-{i:06d}.tar" for i in range(4)]

    with ShardWriter(tmp_path / "s", max_count=None, max_bytes=6000) as w:
        w.write_all(Sample(f"k{i}", rgb(i, 24), 0) for i in range(8))
    assert len(w.shards) > 1
    assert all(i.nbytes <= 6000 + 10240 for i in w.shards)  # one tar record of slack
    assert sum(i.count for i in w.shards) == 8


def test_sidecar_written_and_matches(tmp_path):
    with ShardWriter(tmp_path, prefix="gen", rank=2, start_index=5) as w:
        w.write(Sample("a", rgb(0), 4))
    shard = tmp_path / "gen-002-000005.tar"
    side = read_sidecar(shard)
    assert side["count"] == 1 and side["keys"] == ["a"] and side["classes"] == [4]
    assert side["bytes"] == shard.stat().st_size
    assert sidecar_path(shard).name == "gen-002-000005.idx.json"


def test_same_samples_give_identical_bytes(tmp_path):
    for sub in ("a", "b"):
        write_shard(
            tmp_path / sub / "x-000-000000.tar", [Sample(f"k{i}", rgb(i), i, {"i": i}) for i in range(3)]
        )
    assert (tmp_path / "a/x-000-000000.tar").read_bytes() == (tmp_path / "b/x-000-000000.tar").read_bytes()


@pytest.mark.parametrize(
    ("sample", "match"),
    [
        (Sample("has.dot", rgb(0), 0), "key 'has.dot' is invalid"),
        (Sample("a/b", rgb(0), 0), "invalid"),
        (Sample("", rgb(0), 0), "invalid"),
        (Sample("a cat", rgb(0), 0), "invalid"),
        (Sample("k", rgb(0), -1), "non-negative"),
        (Sample("k", rgb(0), True), "non-negative"),
        (Sample("k", rgb(0), 0, meta=[1]), "metadata must be a dict"),  # type: ignore[arg-type]
        (Sample("k", rgb(0), 0, meta={"x": float("nan")}), "not JSON"),
        (Sample("k", rgb(0).astype(np.float32), 0), "dtype float32"),
        (Sample("k", np.zeros((3, 8, 8), np.uint8), 0), "channels last"),
        (Sample("k", b"not an image", 0), "not PNG"),
        (Sample("k", None, 0), "no image"),
        (Sample("k", rgb(0), 0, extra={"cls": "x"}), "reserved"),
    ],
)
def test_bad_samples_are_rejected_clearly(tmp_path, sample, match):
    with pytest.raises(SampleError, match=match), ShardWriter(tmp_path) as w:
        w.write(sample)
    assert list(tmp_path.glob("*.tar")) == []


def test_missing_required_field_and_duplicates(tmp_path):
    with pytest.raises(SampleError, match="lacks required field"), ShardWriter(tmp_path) as w:
        w.write({"key": "a", "image": rgb(0)})
    with pytest.raises(SampleError, match="duplicate sample key"), ShardWriter(tmp_path) as w:
        w.write(Sample("a", rgb(0), 0))
        w.write(Sample("a", rgb(1), 0))


def test_error_in_block_discards_only_the_open_shard(tmp_path):
    with pytest.raises(RuntimeError), ShardWriter(tmp_path, max_count=2) as w:
        for i in range(3):
            w.write(Sample(f"k{i}", rgb(i), 0))
        raise RuntimeError("crash")
    assert [p.name for p in list_shards(tmp_path)] == ["shard-000-000000.tar"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-000-000000.idx.json", "shard-000-000000.tar"]


def test_write_shard_replaces_previous_and_drops_stale_sidecar(tmp_path):
    path = tmp_path / "g-000-000001.tar"
    write_shard(path, [Sample("a", rgb(0), 0)])
    with pytest.raises(SampleError):
        write_shard(path, [Sample("b", rgb(1), 0), Sample("bad key", rgb(2), 0)])
    # the failed rewrite removed the old sidecar first: the shard now counts as incomplete, never stale
    assert not sidecar_path(path).exists()
    write_shard(path, [Sample("b", rgb(1), 0)])
    assert [s.key for s in iter_samples(tmp_path)] == ["b"]


def test_unwritable_output_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputDirError, match="cannot create output directory"):
        ShardWriter(blocker / "sub")
    with pytest.raises(OutputDirError, match="not a directory"):
        ShardWriter(blocker)


def test_tar_members_are_standard(tmp_path):
    with ShardWriter(tmp_path) as w:
        w.write(Sample("k0", rgb(0), 1, {"a": 1}, extra={"scores.json": {"confidence": 0.5}}))
    with tarfile.open(next(Path(tmp_path).glob("*.tar"))) as tar:
        names = tar.getnames()
        assert names == ["k0.cls", "k0.json", "k0.png", "k0.scores.json"]
        assert tar.extractfile("k0.cls").read() == b"1"
    (s,) = iter_samples(tmp_path)
    assert s.extra == {"scores.json": b'{"confidence": 0.5}'}
