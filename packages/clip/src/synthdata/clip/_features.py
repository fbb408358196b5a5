"""Batched, gradient-free feature extraction and CLIP's zero-shot head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from synthdata.clip._loading import ClipBundle


@torch.no_grad()
def text_features(bundle: ClipBundle, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """Encode ``texts`` in batches; returns L2-normalised fp32 features ``(N, D)`` on the model's device."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    texts = list(texts)
    if not texts:
        raise ValueError("text_features needs at least one text")
    out = []
    for start in range(0, len(texts), batch_size):
        tokens = bundle.tokenizer(texts[start : start + batch_size]).to(bundle.device)
        feats = bundle.model.encode_text(tokens)
        out.append(F.normalize(feats.float(), dim=-1))
    return torch.cat(out)


@torch.no_grad()
def zeroshot_weights(
    bundle: ClipBundle, classnames: Sequence[str], templates: Sequence[str], batch_size: int = 256
) -> torch.Tensor:
    """CLIP's zero-shot head ``(C, D)``: per class, the re-normalised mean of its normalised template embeddings.

    Every ``template.format(classname)`` is encoded once, in batches over all classes together.
    """
    classnames, templates = list(classnames), list(templates)
    if not classnames:
        raise ValueError("zeroshot_weights needs at least one class name")
    if not templates:
        raise ValueError("zeroshot_weights needs at least one template")
    bad = [t for t in templates if "{}" not in t and "{c}" not in t]
    if bad:
        raise ValueError(f"templates must contain '{{}}' for the class name, got {bad[:3]!r}")
    texts = [_fill(t, c) for c in classnames for t in templates]
    feats = text_features(bundle, texts, batch_size=batch_size)
    feats = feats.view(len(classnames), len(templates), -1).mean(dim=1)
    return F.normalize(feats, dim=-1)


def _fill(template: str, classname: str) -> str:
    return template.replace("{c}", classname) if "{c}" in template else template.format(classname)


@torch.no_grad()
def image_features(bundle: ClipBundle, images: torch.Tensor) -> torch.Tensor:
    """Encode preprocessed images ``(B, 3, H, W)``; returns L2-normalised fp32 features ``(B, D)``."""
    images = images.to(device=bundle.device, dtype=bundle.dtype, non_blocking=True)
    return F.normalize(bundle.model.encode_image(images).float(), dim=-1)


def logit_scale(bundle: ClipBundle) -> float:
    """``exp(logit_scale)`` of the model: 100 for OpenAI's weights, 1/0.07 for random ones."""
    return float(bundle.model.logit_scale.detach().float().exp().item())
