"""timm model construction: the paper's two architectures at a small input size, and a ViT training step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from synthdata.pretrain import PretrainError, read_metrics, train
from synthdata.pretrain._models import create_model, data_config, train_criterion

from ._helpers import tiny_config


@pytest.mark.parametrize("name", ["resnet50", "deit_small_patch16_224"])
def test_paper_models_build_at_any_size(name: str) -> None:
    model = create_model(name, num_classes=4, img_size=64).eval()
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 4)
    dcfg = data_config(model, 64)
    assert dcfg["input_size"] == [3, 64, 64] and len(dcfg["mean"]) == 3


def test_unknown_model_names_similar_ones() -> None:
    with pytest.raises(PretrainError, match=r"similar: .*resnet"):
        create_model("resnet_typo", num_classes=4, img_size=32)


def test_criterion_choice() -> None:
    assert isinstance(train_criterion(0.0, mixup=False), torch.nn.CrossEntropyLoss)
    target = torch.tensor([1, 0])
    logits = torch.tensor([[0.0, 5.0], [5.0, 0.0]])
    assert train_criterion(0.1, mixup=False)(logits, target) > torch.nn.functional.cross_entropy(
        logits, target
    )


def test_vit_trains_at_a_small_size(demo_shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "vit"
    train(tiny_config(demo_shards, out, model="test_vit", epochs=1, channels_last=True, clip_grad=1.0))
    (epoch,) = [r for r in read_metrics(out / "metrics.jsonl") if r["event"] == "epoch"]
    assert epoch["train_loss"] > 0
