"""publish_directory: a local shard directory made the exact content of a remote one, in commit order."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthdata.shards import ShardDataset, list_shards, storage
from synthdata.shards.publish import publish_directory

from ._helpers import make_dataset


@pytest.fixture
def local(tmp_path: Path) -> Path:
    d = make_dataset(tmp_path / "d", n=10, max_count=4)  # 3 shards
    (d / "notes").mkdir()
    (d / "notes" / "a.txt").write_text("a")
    (d / ".hidden").write_text("never published")
    return d


@pytest.fixture
def remote(tmp_path: Path) -> str:
    return f"memory://publish-{tmp_path.name}/out"


def _tree(remote: str) -> dict[str, bytes]:
    found = {n: storage.read_bytes(storage.join(remote, n)) for n in storage.listdir(remote)}
    found |= {f"notes/{n}": storage.read_bytes(storage.join(remote, "notes", n)) for n in storage.listdir(f"{remote}/notes")}
    return found


def _files(local: Path) -> dict[str, bytes]:
    return {
        p.relative_to(local).as_posix(): p.read_bytes()
        for p in local.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def test_publish_uploads_every_file_shards_first_dataset_json_last(local, remote, monkeypatch):
    order: list[str] = []
    upload = storage.upload
    monkeypatch.setattr(storage, "upload", lambda src, dst: (order.append(dst[len(remote) + 1 :]), upload(src, dst)))
    done = publish_directory(local, remote)
    assert _tree(remote) == _files(local)
    assert order[-1] == "dataset.json" and sorted(order) == sorted(done.uploaded)
    for shard in list_shards(local):
        assert order.index(shard.name) < order.index(shard.name.replace(".tar", ".idx.json"))
    assert ShardDataset.open(remote).key_index() == ShardDataset.open(local).key_index()


def test_a_second_publish_skips_matching_shards_and_removes_stale_ones(local, remote):
    publish_directory(local, remote)
    storage.write_bytes(f"{remote}/old-000-000009.tar", b"x")
    storage.write_bytes(f"{remote}/old-000-000009.idx.json", b"{}")
    done = publish_directory(local, remote)
    shards = {p.name for p in list_shards(local)}
    assert set(done.unchanged) == shards | {n.replace(".tar", ".idx.json") for n in shards}
    assert done.removed == ["dataset.json", "old-000-000009.idx.json", "old-000-000009.tar"]
    assert set(done.uploaded) == {"dataset.json", "notes/a.txt"}
    assert _tree(remote) == _files(local)


def test_a_remote_tar_of_another_size_is_uploaded_again(local, remote):
    publish_directory(local, remote)
    shard = list_shards(local)[1]
    storage.write_bytes(storage.join(remote, shard.name), shard.read_bytes()[:1000])  # truncated, sidecar intact
    done = publish_directory(local, remote)
    assert shard.name in done.uploaded and shard.name not in done.unchanged
    assert storage.read_bytes(storage.join(remote, shard.name)) == shard.read_bytes()


def test_a_changed_shard_is_uploaded_again(local, remote):
    publish_directory(local, remote)
    make_dataset(local, n=10, max_count=4, fmt="jpg")  # same names, other bytes
    done = publish_directory(local, remote)
    assert not done.unchanged
    assert _tree(remote) == _files(local)
