"""Demo data for the tuning tests: class-separable colour patterns, so learning is measurable."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthdata.shards import make_demo


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> dict[str, Path]:
    """``train``: shards, 4 classes x 16; ``eval``: an ImageFolder of the same classes (another seed);
    ``real``: a second ImageFolder (few-shot pool, 4 x 6); ``cache``: a feature cache directory to share."""
    root = tmp_path_factory.mktemp("tune-demo")
    return {
        "train": make_demo(root / "train", classes=4, per_class=16, seed=1),
        "eval": make_demo(root / "eval", classes=4, per_class=16, seed=2, imagefolder=True),
        "real": make_demo(root / "real", classes=4, per_class=6, seed=3, imagefolder=True),
        "cache": root / "feature_cache",
    }
