"""CUDA paths (skipped without a GPU): bf16 and fp16 autocast, channels_last, EMA, transfer on the GPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthdata.pretrain import TransferConfig, load_checkpoint, read_metrics, train, transfer

from ._helpers import tiny_config

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_training(
    amp: str, demo_shards: Path, demo_folders: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / amp
    cfg = tiny_config(
        demo_shards, out, epochs=2, device="cuda", amp=amp, channels_last=True, ema=True, workers=1
    )
    summary = train(cfg)
    assert summary["finished"]
    epochs = [r for r in read_metrics(out / "metrics.jsonl") if r["event"] == "epoch"]
    assert all(r["train_loss"] == r["train_loss"] for r in epochs)  # finite (NaN != NaN)
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert (ckpt["scaler"] is not None) == (amp == "fp16")
    result = transfer(
        TransferConfig(
            ckpt=str(out / "checkpoints" / "last.pt"),
            train_dir=str(demo_folders[0]),
            eval_dir=str(demo_folders[1]),
            epochs=1,
            batch_size=8,
            workers=0,
            device="cuda",
            amp=amp,
        )
    )
    assert 0 <= result["top1"] <= 100
