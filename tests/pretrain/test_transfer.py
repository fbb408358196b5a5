"""Transfer a pre-training checkpoint to an ImageFolder dataset: linear probe and fine-tuning."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from synthdata.pretrain import PretrainError, TransferConfig, train, transfer

from ._helpers import CLASSES, tiny_config


@pytest.fixture(scope="module")
def checkpoint(demo_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pre") / "run"
    train(tiny_config(demo_shards, out, epochs=3, ema=True, ema_decay=0.5))
    return out / "checkpoints" / "last.pt"


def _config(checkpoint: Path, folders: tuple[Path, Path], **overrides) -> TransferConfig:
    train_dir, val_dir = folders
    base = {
        "ckpt": str(checkpoint),
        "train_dir": str(train_dir),
        "eval_dir": str(val_dir),
        "epochs": 3,
        "batch_size": 8,
        "workers": 0,
        "device": "cpu",
    }
    return TransferConfig(**{**base, **overrides})


def test_linear_probe_and_finetune(checkpoint: Path, demo_folders: tuple[Path, Path]) -> None:
    linear = transfer(_config(checkpoint, demo_folders, mode="linear", lr=3e-2))
    tuned = transfer(_config(checkpoint, demo_folders, mode="finetune", lr=3e-3, use_ema=True))
    for result in (linear, tuned):
        assert result["num_classes"] == CLASSES and result["eval_images"] == CLASSES * 4
        assert 0 <= result["top1"] <= 100 and len(result["per_epoch"]) == 3
    # the demo classes differ by colour and pattern: a probe on pre-trained features beats chance (25%)
    assert linear["best_top1"] > 100 / CLASSES
    lines = (checkpoint.parent.parent / "transfer.jsonl").read_text().splitlines()
    assert [json.loads(line)["mode"] for line in lines] == ["linear", "finetune"]


def test_transfer_errors(
    checkpoint: Path, demo_folders: tuple[Path, Path], demo_shards: Path, tmp_path: Path
) -> None:
    with pytest.raises(PretrainError, match=r"--train .*holds WebDataset shards.*--imagefolder"):
        transfer(_config(checkpoint, demo_folders, train_dir=str(demo_shards)))
    with pytest.raises(PretrainError, match="--eval "):
        transfer(_config(checkpoint, demo_folders, eval_dir=str(tmp_path / "missing")))
    other = tmp_path / "other"
    shutil.copytree(next(demo_folders[1].iterdir()), other / "000_only_class")
    with pytest.raises(PretrainError, match="classes mismatch"):
        transfer(_config(checkpoint, demo_folders, eval_dir=str(other)))
    (tmp_path / "empty" / "000_a").mkdir(parents=True)
    with pytest.raises(PretrainError, match="--train "):
        transfer(_config(checkpoint, demo_folders, train_dir=str(tmp_path / "empty")))
    with pytest.raises(PretrainError, match="does not exist"):
        transfer(_config(tmp_path / "none.pt", demo_folders))


@pytest.mark.parametrize("cls", ["train", "transfer"])
def test_both_configs_check_device_and_precision_alike(cls: str, tmp_path: Path) -> None:
    def config(**fields):
        if cls == "train":
            return tiny_config(tmp_path, tmp_path, **fields)
        return TransferConfig(ckpt="c", train_dir="t", eval_dir="e", **fields)

    assert config(device="cpu", amp="none").amp == "fp32"  # the old spelling, normalised
    assert config(device="cpu", amp="auto").amp_dtype is None
    assert config(device="cuda", amp="auto").amp_dtype == "bfloat16"
    assert config(device="cuda", amp="fp16").amp_dtype == "float16"
    what = "training" if cls == "train" else "transfer"
    with pytest.raises(PretrainError, match=f"needs --device cuda; on the CPU {what} runs in float32"):
        config(device="cpu", amp="bf16").validate()
    with pytest.raises(PretrainError, match="--precision must be auto, fp32, bf16 or fp16, got 'fp8'"):
        config(device="cpu", amp="fp8").validate()
    with pytest.raises(PretrainError, match="--device must be cpu or cuda"):
        config(device="tpu").validate()


def test_cuda_without_a_device_is_refused_alike(
    demo_shards: Path, demo_folders: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    wanted = r"^--device cuda but no CUDA device is visible; pass --device cpu or auto$"
    with pytest.raises(PretrainError, match=wanted):
        train(tiny_config(demo_shards, tmp_path / "run", device="cuda"))
    with pytest.raises(PretrainError, match=wanted):
        transfer(_config(tmp_path / "unused.pt", demo_folders, device="cuda"))
