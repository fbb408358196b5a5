"""Frozen-encoder image features and their on-disk cache.

A cache entry holds the L2-normalised fp32 features and labels of one image set (or a subset of it) under
one model and preprocessing. Its key is the sha256 of a JSON description of everything that decides the
features: the cache format, the model name and pretrained tag, a digest of the image encoder's weights
(so random weights from another seed, or a changed weights file, never hit), the weights dtype, the
preprocessing (``repr`` of the transform: image size, resize, crop, normalisation), the image set's
fingerprint (:meth:`ImageSet.fingerprint`) and the subset's indices. Entries are
``<cache_dir>/<key>.safetensors``, written atomically; a corrupt or mismatching entry is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from synthdata.tune._io import atomic_write_bytes
from synthdata.tune.data import ImageSet, image_loader

log = logging.getLogger(__name__)

CACHE_FORMAT = "synthdata.tune-features/1"


@dataclass(slots=True)
class Features:
    """Features ``(N, D)`` fp32 (L2-normalised), labels ``(N,)`` int64, and how they were obtained."""

    features: torch.Tensor
    labels: torch.Tensor
    indices: np.ndarray
    cache: str  # "hit", "miss" (computed and stored) or "off"
    seconds: float


def encoder_digest(model: torch.nn.Module) -> str:
    """sha256 over the image encoder's parameter and buffer names, shapes, dtypes and bytes."""
    visual = getattr(model, "visual", model)
    digest = hashlib.sha256()
    for name, tensor in sorted(visual.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tuple(t.shape)}|{t.dtype}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def preprocess_description(preprocess: object) -> str:
    """A stable text description of a torchvision transform (sizes, interpolation, crop, mean/std)."""
    return " ".join(repr(preprocess).split())


def cache_key(
    *,
    model_name: str,
    pretrained: str,
    encoder: str,
    dtype: str,
    preprocess: str,
    dataset: str,
    indices: Sequence[int] | None,
) -> tuple[str, dict]:
    """The cache key (hex sha256) and the JSON description it hashes."""
    subset = (
        "all"
        if indices is None
        else hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()
    )
    description = {
        "format": CACHE_FORMAT,
        "model": model_name,
        "pretrained": pretrained,
        "encoder_sha256": encoder,
        "dtype": dtype,
        "preprocess": preprocess,
        "dataset_sha256": dataset,
        "subset": subset,
    }
    blob = json.dumps(description, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest(), description


@torch.no_grad()
def encode_images(
    bundle,
    image_set: ImageSet,
    indices: Sequence[int] | None = None,
    *,
    batch_size: int = 128,
    workers: int = 0,
    model: torch.nn.Module | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Preprocess and encode the images at ``indices`` (all by default) with ``model`` (the bundle's by
    default) in eval mode; returns normalised fp32 features on the CPU and the int64 labels, index order.

    ``workers`` > 0 decodes and preprocesses in that many DataLoader processes (shards or ImageFolder
    chunks split between them; at most one per usable CPU); the result does not depend on it.
    """
    import torch.nn.functional as F

    model = model if model is not None else bundle.model
    pin = torch.device(bundle.device).type == "cuda"
    loader = image_loader(
        image_set, indices, bundle.preprocess, batch_size=batch_size, workers=workers, pin_memory=pin
    )
    was_training = model.training
    model.eval()
    order: list[torch.Tensor] = []
    feats: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    try:
        for idx, x, y in loader:
            x = x.to(device=bundle.device, dtype=bundle.dtype, non_blocking=True)
            feats.append(F.normalize(model.encode_image(x).float(), dim=-1).cpu())
            order.append(idx)
            labels.append(y)
    finally:
        model.train(was_training)
    if not feats:
        raise ValueError(f"{image_set.describe()}: no images to encode")
    perm = torch.argsort(torch.cat(order))
    return torch.cat(feats)[perm], torch.cat(labels).to(torch.int64)[perm]


class FeatureCache:
    """Features of image sets under one frozen model, computed once and stored in ``directory``
    (``None``: never stored)."""

    def __init__(
        self, bundle, directory: str | os.PathLike[str] | None, *, batch_size: int = 128, workers: int = 0
    ):
        self.bundle = bundle
        self.directory = Path(directory) if directory is not None else None
        self.batch_size = batch_size
        self.workers = workers
        self._encoder: str | None = None

    @property
    def encoder(self) -> str:
        if self._encoder is None:
            self._encoder = encoder_digest(self.bundle.model)
        return self._encoder

    def key(self, image_set: ImageSet, indices: Sequence[int] | None = None) -> tuple[str, dict]:
        return cache_key(
            model_name=self.bundle.name,
            pretrained=str(self.bundle.pretrained),
            encoder=self.encoder,
            dtype=str(self.bundle.dtype),
            preprocess=preprocess_description(self.bundle.preprocess),
            dataset=image_set.fingerprint(),
            indices=indices,
        )

    def path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{key}.safetensors"

    def get(self, image_set: ImageSet, indices: Sequence[int] | None = None) -> Features:
        """The features of ``image_set`` (rows in ascending index order), from the cache when present."""
        start = time.perf_counter()
        sel = np.arange(len(image_set)) if indices is None else np.sort(np.asarray(indices, dtype=np.int64))
        subset = None if indices is None else sel

        def encode() -> tuple[torch.Tensor, torch.Tensor]:
            return encode_images(
                self.bundle, image_set, subset, batch_size=self.batch_size, workers=self.workers
            )

        if self.directory is None:
            return Features(*encode(), sel, "off", time.perf_counter() - start)
        key, description = self.key(image_set, subset)
        path = self.path(key)
        loaded = self._load(path, key, len(sel))
        if loaded is not None:
            log.info("feature cache hit: %s (%s, %d images)", path.name, image_set.describe(), len(sel))
            return Features(*loaded, sel, "hit", time.perf_counter() - start)
        f, y = encode()
        metadata = {
            "key": key,
            "description": json.dumps(description, sort_keys=True),
            "source": image_set.describe(),
            "count": str(len(y)),
        }
        atomic_write_bytes(
            path, save({"features": f.contiguous(), "labels": y.contiguous()}, metadata=metadata)
        )
        log.info("feature cache miss: wrote %s (%s, %d images)", path, image_set.describe(), len(y))
        return Features(f, y, sel, "miss", time.perf_counter() - start)

    @staticmethod
    def _load(path: Path, key: str, count: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
            tensors = load_file(str(path))
            f, y = tensors["features"], tensors["labels"]
        except (SafetensorError, OSError, KeyError, ValueError) as exc:
            log.warning("ignoring unreadable feature cache entry %s (%s); recomputing", path, exc)
            return None
        if meta.get("key") != key or f.ndim != 2 or len(f) != count or y.shape != (count,):
            log.warning("ignoring mismatching feature cache entry %s; recomputing", path)
            return None
        return f.float(), y.long()
