"""timm model, transform and loss construction shared by pre-training and transfer."""

from __future__ import annotations

import contextlib
from typing import Any

import timm
import torch
from timm.data import create_transform, resolve_data_config
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

from synthdata.pretrain.config import PretrainError


def check_model_name(name: str) -> None:
    """Raise :class:`PretrainError` naming similar models when timm does not know ``name``."""
    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:8]
        hint = f" (similar: {', '.join(close)})" if close else ""
        raise PretrainError(f"timm has no model named {name!r}{hint}; see timm.list_models()")


def create_model(
    name: str, num_classes: int, img_size: int, drop_path: float | None = None
) -> torch.nn.Module:
    """``timm.create_model(name, pretrained=False, num_classes=...)``; fixed-size models get ``img_size``."""
    check_model_name(name)
    kwargs: dict[str, Any] = {"pretrained": False, "num_classes": num_classes}
    if drop_path is not None:
        kwargs["drop_path_rate"] = drop_path
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is not None and getattr(cfg, "fixed_input_size", False):
        kwargs["img_size"] = img_size  # ViTs/DeiTs: position embeddings sized for this input
    return timm.create_model(name, **kwargs)


def data_config(model: torch.nn.Module, img_size: int) -> dict[str, Any]:
    """The model's normalisation and interpolation, at ``img_size``; plain values (saved in checkpoints)."""
    cfg = resolve_data_config({}, model=model)
    return {
        "input_size": [3, img_size, img_size],
        "interpolation": str(cfg["interpolation"]),
        "mean": [float(v) for v in cfg["mean"]],
        "std": [float(v) for v in cfg["std"]],
        "crop_pct": float(cfg["crop_pct"]),
    }


def train_transform(
    dcfg: dict[str, Any], *, auto_augment: str | None = None, color_jitter: float = 0.4, reprob: float = 0.0
) -> Any:
    return create_transform(
        input_size=tuple(dcfg["input_size"]),
        is_training=True,
        auto_augment=auto_augment,
        color_jitter=color_jitter,
        re_prob=reprob,
        interpolation=dcfg["interpolation"],
        mean=tuple(dcfg["mean"]),
        std=tuple(dcfg["std"]),
    )


def eval_transform(dcfg: dict[str, Any]) -> Any:
    return create_transform(
        input_size=tuple(dcfg["input_size"]),
        is_training=False,
        interpolation=dcfg["interpolation"],
        mean=tuple(dcfg["mean"]),
        std=tuple(dcfg["std"]),
        crop_pct=dcfg["crop_pct"],
    )


def train_criterion(smoothing: float, mixup: bool) -> torch.nn.Module:
    """Soft-target CE under mixup/cutmix (smoothing then lives in the mixed targets), else label smoothing."""
    if mixup:
        return SoftTargetCrossEntropy()
    if smoothing > 0:
        return LabelSmoothingCrossEntropy(smoothing=smoothing)
    return torch.nn.CrossEntropyLoss()


def amp_dtype(name: str | None) -> torch.dtype | None:
    return {None: None, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def autocast(device_type: str, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    """``torch.autocast`` to ``dtype`` on ``device_type``; no autocast (float32) for None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=dtype)
