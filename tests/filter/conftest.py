"""Fixtures for the filter tests: small demo shard directories and a tiny random CLIP."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from synthdata.clip import ClipBundle, load_clip
from synthdata.shards import make_demo

TINY = "synthdata-tiny-rn"


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """4 classes x 3 images in shards of 4 (so shards mix classes and there are several)."""
    return make_demo(tmp_path_factory.mktemp("demo") / "A", classes=4, per_class=3, shard_size=4, size=32)


@pytest.fixture(scope="session")
def tiny() -> ClipBundle:
    torch.manual_seed(0)
    return load_clip(TINY, "none")
