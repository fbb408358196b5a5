"""Shard source resolution, epoch plans and the seeded, rank-split shard pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthdata.pretrain import PretrainError, data, plan_epochs, resolve_source
from synthdata.pretrain.data import epoch_seed, shard_pipeline

from ._helpers import CLASSES, PER_CLASS, tiny_config


def _identity(image):
    return image.size


def test_resolve_local_directory(demo_shards: Path) -> None:
    source = resolve_source(str(demo_shards))
    assert source.num_classes == CLASSES
    assert source.total == CLASSES * PER_CLASS
    assert len(source.urls) == 8


def test_resolve_errors(tmp_path: Path, demo_shards: Path) -> None:
    with pytest.raises(PretrainError, match="no such directory"):
        resolve_source(str(tmp_path / "missing"))
    with pytest.raises(PretrainError, match="--num-classes"):
        resolve_source("https://example.org/shards-{000..003}.tar")
    with pytest.raises(PretrainError, match="does not match"):
        resolve_source(str(demo_shards), num_classes=CLASSES + 1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PretrainError):
        resolve_source(str(tmp_path / "empty"))
    urls = resolve_source("https://example.org/shards-{000..003}.tar", num_classes=10)
    assert len(urls.urls) == 4 and urls.counts is None


def test_plan_epochs(demo_shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = resolve_source(str(demo_shards))
    monkeypatch.setattr(data, "cpus_per_process", lambda: 16)
    plan = plan_epochs(source, tiny_config(demo_shards, tmp_path, workers=8), world_size=2)
    assert plan.steps == 64 // 16 and plan.epoch_samples == 64
    assert plan.workers == 4  # capped at shards per rank
    monkeypatch.setattr(data, "cpus_per_process", lambda: 3)
    assert plan_epochs(source, tiny_config(demo_shards, tmp_path, workers=8), world_size=2).workers == 3
    with pytest.raises(PretrainError, match="cannot be split over 16 ranks"):
        plan_epochs(source, tiny_config(demo_shards, tmp_path), world_size=16)
    with pytest.raises(PretrainError, match="smaller than one optimizer update"):
        plan_epochs(source, tiny_config(demo_shards, tmp_path, batch_size=64), world_size=2)
    url_source = resolve_source("https://example.org/s-{000..003}.tar", num_classes=3)
    with pytest.raises(PretrainError, match="--epoch-samples"):
        plan_epochs(url_source, tiny_config(demo_shards, tmp_path), world_size=1)


def _read(demo_shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rank: int, **cfg) -> list:
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", "2")
    config = tiny_config(demo_shards, tmp_path, **cfg)
    source = resolve_source(str(demo_shards))
    plan = plan_epochs(source, config, world_size=2)
    return list(shard_pipeline(source, config, plan, epoch_seed(0, 0), _identity))


def test_ranks_read_disjoint_shards(
    demo_shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r0 = _read(demo_shards, tmp_path, monkeypatch, 0)
    r1 = _read(demo_shards, tmp_path, monkeypatch, 1)
    shards0, shards1 = {s[3] for s in r0}, {s[3] for s in r1}
    assert not shards0 & shards1
    assert len(shards0 | shards1) == 8
    keys = [s[2] for s in r0 + r1]
    assert len(keys) == len(set(keys)) == CLASSES * PER_CLASS
    # the sidecars agree: every key a rank read belongs to one of its shards
    for name in shards0:
        side = json.loads((demo_shards / name.replace(".tar", ".idx.json")).read_text())
        assert set(side["keys"]) <= {s[2] for s in r0}


def test_pipeline_is_deterministic(
    demo_shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = [s[2] for s in _read(demo_shards, tmp_path, monkeypatch, 0)]
    again = [s[2] for s in _read(demo_shards, tmp_path, monkeypatch, 0)]
    assert first == again
    resampled = [s[2] for s in _read(demo_shards, tmp_path, monkeypatch, 0, resampled=True)]
    assert resampled == [s[2] for s in _read(demo_shards, tmp_path, monkeypatch, 0, resampled=True)]
    assert len(resampled) == 4 * 8  # steps x batch for the one (in-process) worker


def test_a_brace_pattern_in_a_shard_directory_reads_its_index(demo_shards) -> None:
    from synthdata.pretrain.data import resolve_source

    source = resolve_source(f"{demo_shards}/demo-000-{{000000..000003}}.tar")
    assert source.num_classes == 4 and len(source.urls) == 4 and source.total == sum(source.counts or [])


def test_a_pattern_naming_incomplete_shards_says_so(demo_shards: Path) -> None:
    # the directory exists (with its dataset.json): the error names the missing shards, not a missing directory
    with pytest.raises(PretrainError, match=r"not complete in .*no sidecar: demo-000-000008\.tar") as caught:
        resolve_source(f"{demo_shards}/demo-000-{{000006..000099}}.tar")
    assert "no such directory" not in str(caught.value)
