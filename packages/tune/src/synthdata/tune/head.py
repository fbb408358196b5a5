"""The classifier head of Classifier Tuning, its zero-shot initialisation, safetensors I/O and WiSE-FT.

The head is WiSE-FT's ``ClassificationHead``: a ``torch.nn.Linear(D, C)`` applied to L2-normalised image
features, its weight initialised to the zero-shot text classifier times CLIP's logit scale and its bias to
zero (the bias is kept and trained). So before tuning, ``head(f) = logit_scale * normalize(f) @ W_zs.T`` is
exactly CLIP's zero-shot logits.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save

from synthdata.tune._io import atomic_write_bytes

HEAD_FORMAT = "synthdata.tune-head/1"


class ClassifierHead(torch.nn.Module):
    """``logits = normalize(features) @ weight.T + bias``; ``weight`` is ``(C, D)``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, *, normalize: bool = True):
        super().__init__()
        if weight.ndim != 2:
            raise ValueError(f"head weight must be (classes, dim), got shape {tuple(weight.shape)}")
        num_classes, dim = weight.shape
        self.normalize = normalize
        self.linear = torch.nn.Linear(dim, num_classes)
        with torch.no_grad():
            self.linear.weight.copy_(weight.float())
            self.linear.bias.copy_(bias.float() if bias is not None else torch.zeros(num_classes))

    @property
    def num_classes(self) -> int:
        return self.linear.out_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            features = F.normalize(features.float(), dim=-1)
        return self.linear(features)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {
            "weight": self.linear.weight.detach().cpu().contiguous(),
            "bias": self.linear.bias.detach().cpu().contiguous(),
        }


def zeroshot_head(text_weights: torch.Tensor, logit_scale: float) -> ClassifierHead:
    """The zero-shot head: ``weight = text_weights * logit_scale`` (rows L2-normalised), bias zero."""
    return ClassifierHead(F.normalize(text_weights.float(), dim=-1) * float(logit_scale))


def save_head(
    head: ClassifierHead,
    path: str | os.PathLike[str],
    *,
    classnames: Sequence[str] | None = None,
    extra: dict[str, str] | None = None,
) -> Path:
    """Write ``weight`` ``(C, D)`` and ``bias`` ``(C,)`` as fp32 safetensors, atomically.

    Metadata (strings): ``format``, ``normalize`` (``"true"``: features are L2-normalised first),
    ``classnames`` (a JSON list) and whatever ``extra`` holds (model, pretrained, kind...).
    """
    metadata = {"format": HEAD_FORMAT, "normalize": "true" if head.normalize else "false"}
    if classnames is not None:
        if len(classnames) != head.num_classes:
            raise ValueError(f"{len(classnames)} class names for a head of {head.num_classes} classes")
        metadata["classnames"] = json.dumps(list(classnames), ensure_ascii=False)
    metadata.update(extra or {})
    return atomic_write_bytes(path, save(head.tensors(), metadata=metadata))


def load_head(path: str | os.PathLike[str]) -> tuple[ClassifierHead, dict[str, str]]:
    """Read a head written by :func:`save_head`; returns the head and its metadata."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        metadata = dict(fh.metadata() or {})
    if metadata.get("format") != HEAD_FORMAT:
        raise ValueError(f"{path} is not a synthdata head (format {metadata.get('format')!r})")
    tensors = load_file(str(path))
    head = ClassifierHead(tensors["weight"], tensors["bias"], normalize=metadata.get("normalize") != "false")
    return head, metadata


def interpolate_state(
    zero_shot: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """WiSE-FT: ``(1 - alpha) * zero_shot + alpha * tuned`` for every floating tensor (others from
    ``tuned``). ``alpha = 0`` gives the zero-shot weights, ``alpha = 1`` the tuned ones, exactly."""
    if zero_shot.keys() != tuned.keys():
        raise ValueError("WiSE-FT needs two state dicts with the same keys")
    out = {}
    for key, t in tuned.items():
        z = zero_shot[key]
        if t.is_floating_point():
            out[key] = (
                t.clone() if alpha == 1 else z.clone() if alpha == 0 else torch.lerp(z, t.to(z.dtype), alpha)
            )
        else:
            out[key] = t.clone()
    return out


def wise_head(zero_shot: ClassifierHead, tuned: ClassifierHead, alpha: float) -> ClassifierHead:
    """The WiSE-FT head at mixing coefficient ``alpha`` (0 = zero-shot, 1 = tuned)."""
    state = interpolate_state(zero_shot.tensors(), tuned.tensors(), alpha)
    return ClassifierHead(state["weight"], state["bias"], normalize=tuned.normalize)
