"""Fixtures for the pre-training tests: tiny demo shards and image folders, one torch thread."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from synthdata.shards import make_demo

from ._helpers import CLASSES, PER_CLASS, SHARD_SIZE


@pytest.fixture(scope="package", autouse=True)
def _one_thread():
    # CI has 2 cores shared by several jobs: more threads only add contention (restored after the package)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def demo_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_demo(
        tmp_path_factory.mktemp("demo") / "shards",
        classes=CLASSES,
        per_class=PER_CLASS,
        size=32,
        shard_size=SHARD_SIZE,
    )


@pytest.fixture(scope="session")
def demo_folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("folders")
    train = make_demo(root / "train", classes=CLASSES, per_class=8, size=32, seed=1, imagefolder=True)
    val = make_demo(root / "val", classes=CLASSES, per_class=4, size=32, seed=2, imagefolder=True)
    return train, val
