"""Constants and config builders shared by the pre-training tests."""

from __future__ import annotations

from pathlib import Path

from synthdata.pretrain import TrainConfig

CLASSES = 4
PER_CLASS = 16
SHARD_SIZE = 8  # 64 samples in 8 shards: enough to split over 2 ranks x 2 workers


def tiny_config(data: Path, out: Path, **overrides) -> TrainConfig:
    """A config that trains timm's ``test_resnet`` at 32px on the CPU in about a second an epoch."""
    base = {
        "data": str(data),
        "model": "test_resnet",
        "img_size": 32,
        "epochs": 2,
        "batch_size": 8,
        "lr": 3e-3,
        "workers": 0,
        "shuffle": 32,
        "device": "cpu",
        "out": str(out),
    }
    return TrainConfig(**{**base, **overrides})
