"""Data-estimated BatchNorm statistics for image encoders whose BatchNorm layers never saw data.

A freshly initialised BatchNorm layer holds placeholder statistics (running mean 0, running variance 1). In
eval mode, which a frozen encoder runs in, such a layer is the identity, so nothing rescales the activations:
in a randomly initialised CLIP ResNet they shrink layer after layer (PyTorch's default convolution init has
a gain below one) until the attention pool's positional embedding, which is about 30x larger, dominates its
output. Every image then gets nearly the same feature (measured on RN50 with random weights: mean pairwise
cosine 0.9995; see ``docs/tune.md``), which no head can tune in a few AdamW steps at the paper's lr.

The remedy is the one every trained network has already had: statistics estimated from data. As in
``torch.optim.swa_utils.update_bn`` (and "precise BN"), the placeholders are replaced by the cumulative
average of batch statistics over a fixed, seeded subset of the training images, forwarded in a fixed order
and batching, so the result does not depend on the number of decode workers. Encoders with any real
statistics (every pretrained checkpoint) and encoders without BatchNorm (ViTs) are left alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from synthdata.tune.data import ImageSet, image_loader

log = logging.getLogger(__name__)

BatchNorm = torch.nn.modules.batchnorm._BatchNorm


def batchnorm_layers(module: torch.nn.Module) -> dict[str, BatchNorm]:
    """The BatchNorm layers of ``module`` that track running statistics, by qualified name."""
    return {
        name: m
        for name, m in module.named_modules()
        if isinstance(m, BatchNorm) and m.track_running_stats and m.running_mean is not None
    }


def has_placeholder_statistics(module: torch.nn.Module) -> bool:
    """True when ``module`` has BatchNorm layers and every one still holds its initial statistics
    (running mean exactly 0, running variance exactly 1): the encoder has never seen data."""
    layers = batchnorm_layers(module)
    return bool(layers) and all(
        bool((m.running_mean == 0).all()) and bool((m.running_var == 1).all()) for m in layers.values()
    )


def batchnorm_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the running statistics of ``module``'s BatchNorm layers (state-dict names, on the CPU)."""
    out = {}
    for name, m in batchnorm_layers(module).items():
        prefix = f"{name}." if name else ""
        for buf in ("running_mean", "running_var", "num_batches_tracked"):
            value = getattr(m, buf, None)
            if value is not None:
                out[prefix + buf] = value.detach().cpu().clone()
    return out


def load_batchnorm_state(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Put statistics from :func:`batchnorm_state` back into ``module``."""
    for name, m in batchnorm_layers(module).items():
        prefix = f"{name}." if name else ""
        for buf in ("running_mean", "running_var", "num_batches_tracked"):
            if prefix + buf in state and getattr(m, buf, None) is not None:
                getattr(m, buf).copy_(state[prefix + buf])


def calibration_indices(n: int, max_images: int, seed: int) -> np.ndarray:
    """A seeded subset of ``min(n, max_images)`` indices of ``range(n)``, ascending."""
    if n <= max_images:
        return np.arange(n)
    rng = np.random.default_rng([seed, 0xB7])
    return np.sort(rng.choice(n, size=max_images, replace=False))


@torch.no_grad()
def calibrate_batchnorm(
    bundle,
    image_set: ImageSet,
    indices: Sequence[int] | None = None,
    *,
    max_images: int = 256,
    seed: int = 0,
    batch_size: int = 128,
    workers: int = 0,
) -> dict[str, Any]:
    """Estimate the BatchNorm statistics of ``bundle.model.visual`` from ``image_set``, in place.

    Up to ``max_images`` images (a seeded subset of ``indices``, default all) are preprocessed with ``bundle.preprocess``, put in index
    order and forwarded in batches of ``batch_size`` with the BatchNorm layers in training mode and
    cumulative averaging (``momentum=None``); afterwards the model is back in eval mode with the layers'
    momenta restored. Returns ``{"layers", "images", "seconds"}``.
    """
    start = time.perf_counter()
    visual = bundle.model.visual
    layers = batchnorm_layers(visual)
    if not layers:
        raise ValueError("the image encoder has no BatchNorm layers to calibrate")
    pool = np.arange(len(image_set)) if indices is None else np.sort(np.asarray(indices, dtype=np.int64))
    chosen = pool[calibration_indices(len(pool), max_images, seed)]
    loader = image_loader(image_set, chosen, bundle.preprocess, batch_size=batch_size, workers=workers)
    pairs = [(int(i), x) for idx, xs, _ in loader for i, x in zip(idx, xs, strict=True)]
    pairs.sort(key=lambda p: p[0])  # fixed batches whatever the workers' interleaving
    images = torch.stack([x for _, x in pairs])
    momenta = {name: m.momentum for name, m in layers.items()}
    was_training = bundle.model.training
    bundle.model.eval()
    try:
        for m in layers.values():
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches
            m.train()
        for s in range(0, len(images), batch_size):
            x = images[s : s + batch_size].to(device=bundle.device, dtype=bundle.dtype)
            bundle.model.encode_image(x)
    finally:
        for name, m in layers.items():
            m.momentum = momenta[name]
        bundle.model.train(was_training)
    info = {"layers": len(layers), "images": len(images), "seconds": round(time.perf_counter() - start, 3)}
    log.info(
        "estimated the statistics of %d BatchNorm layers that had never seen data (random weights) from %d "
        "training images (%s) in %.1fs",
        info["layers"],
        info["images"],
        image_set.describe(),
        info["seconds"],
    )
    return info
