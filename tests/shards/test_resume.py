from synthdata.shards import Sample, is_complete, plan_resume, shard_name, sidecar_path, write_shard

from ._helpers import flip_byte_in_member, rgb


def _write(directory, index, n=2):
    path = directory / shard_name("gen", 0, index)
    write_shard(path, [Sample(f"i{index}-{j}", rgb(j), 0) for j in range(n)])
    return path


def test_plan_resume_sorts_and_cleans(tmp_path):
    done = _write(tmp_path, 0)
    no_sidecar = _write(tmp_path, 1)
    sidecar_path(no_sidecar).unlink()
    corrupt = _write(tmp_path, 2)
    flip_byte_in_member(corrupt)
    orphan_sidecar = _write(tmp_path, 3)
    orphan_sidecar.unlink()
    (tmp_path / f".{shard_name('gen', 0, 4)}.tmp-123-abcd").write_bytes(b"partial")
    other_rank_temp = tmp_path / f".{shard_name('gen', 0, 9)}.tmp-456-beef"
    other_rank_temp.write_bytes(b"in progress elsewhere")

    planned = [shard_name("gen", 0, i) for i in range(5)]
    plan = plan_resume(tmp_path, planned)
    assert plan.complete == (done.name,)
    assert plan.todo == tuple(planned[1:])
    assert not no_sidecar.exists() and not corrupt.exists() and not sidecar_path(orphan_sidecar).exists()
    assert not list(tmp_path.glob(f".{shard_name('gen', 0, 4)}*"))
    assert other_rank_temp.exists()  # not ours: untouched
    assert is_complete(done)


def test_plan_resume_on_missing_directory(tmp_path):
    plan = plan_resume(tmp_path / "new", ["gen-000-000000.tar"])
    assert plan.todo == ("gen-000-000000.tar",) and plan.complete == ()


def test_size_only_check_skips_hashing(tmp_path):
    path = _write(tmp_path, 0)
    flip_byte_in_member(path)  # same size, different content
    assert is_complete(path, check_checksum=False)
    assert not is_complete(path, check_checksum=True)
