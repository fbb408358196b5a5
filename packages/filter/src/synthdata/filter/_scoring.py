"""Streaming, batched CLIP scoring of shards: the zero-shot head built once, images in DataLoader batches."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from synthdata.clip import ClipBundle, image_features, logit_scale, text_features, zeroshot_weights
from synthdata.shards import ErrorCounter, list_shards, read_dataset_json, wds_pipeline
from synthdata.shards.errors import DatasetInfoError
from synthdata.shards.resume import read_sidecar

log = logging.getLogger(__name__)


class ClassListError(ValueError):
    """The class list given does not match the shards' class indices or names."""


@dataclass(slots=True)
class SampleScore:
    """CLIP's verdict on one sample. Scores are None for a sample that could not be read (``error`` says why)."""

    key: str
    class_index: int
    shard: str
    confidence: float | None = None  # softmax probability of the intended class
    top1: int | None = None  # the class CLIP ranks first
    top1_confidence: float | None = None
    clip_score: float | None = None  # 100 * cosine(image, its own prompt); None without meta["prompt"]
    kept: bool = False
    error: str | None = None

    def to_json(self, classnames: Sequence[str]) -> dict[str, Any]:
        return {
            "key": self.key,
            "class_index": self.class_index,
            "class_name": classnames[self.class_index] if 0 <= self.class_index < len(classnames) else None,
            "confidence": self.confidence,
            "top1": self.top1,
            "top1_confidence": self.top1_confidence,
            "clip_score": self.clip_score,
            "kept": self.kept,
            "shard": self.shard,
            "error": self.error,
        }


@dataclass(slots=True)
class ScoreResult:
    """Every sample's score in key order, plus what was skipped and how long scoring took."""

    scores: list[SampleScore]
    corrupt: list[SampleScore] = field(default_factory=list)
    seconds: float = 0.0
    text_seconds: float = 0.0
    error_messages: list[str] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return len(self.scores) / self.seconds if self.seconds > 0 else 0.0


def _norm_name(name: str) -> str:
    return " ".join(name.replace("_", " ").lower().split())


def shard_index(source: str | os.PathLike[str]) -> dict[str, tuple[str, int]]:
    """``key -> (shard name, class index)`` from the sidecars of the complete shards (no tar is read)."""
    index: dict[str, tuple[str, int]] = {}
    for shard in list_shards(source):
        side = read_sidecar(shard) or {}
        keys, classes = side.get("keys") or [], side.get("classes") or []
        for i, key in enumerate(keys):
            index[key] = (shard.name, int(classes[i]) if i < len(classes) else -1)
    return index


def check_classes(source: str | os.PathLike[str], classnames: Sequence[str], index: dict) -> None:
    """Raise :class:`ClassListError` if ``classnames`` cannot be the shards' classes.

    The list must have exactly the length and (ignoring case, ``_`` vs space) the names of the input's
    ``dataset.json`` when there is one, and cover every class index the sidecars list.
    """
    classnames = list(classnames)
    if not classnames:
        raise ClassListError("the class list is empty")
    try:
        shard_classes: list[str] | None = read_dataset_json(source).classes
    except DatasetInfoError:
        shard_classes = None
    if shard_classes is not None:
        if len(shard_classes) != len(classnames):
            raise ClassListError(
                f"the class list has {len(classnames)} names but {source}/dataset.json has "
                f"{len(shard_classes)} classes; pass the list the shards were made with "
                "(or --classes-from-shards)"
            )
        for i, (given, theirs) in enumerate(zip(classnames, shard_classes, strict=True)):
            if _norm_name(given) != _norm_name(theirs):
                raise ClassListError(
                    f"class {i} is {given!r} in the class list but {theirs!r} in {source}/dataset.json; "
                    "the list must be in the shards' class-index order (or use --classes-from-shards)"
                )
    top = max((c for _, c in index.values()), default=-1)
    if top >= len(classnames):
        raise ClassListError(
            f"the shards hold class index {top} but the class list has only {len(classnames)} names"
        )


def _collate(batch: list[tuple]) -> tuple[torch.Tensor, list[int], list[dict], list[str]]:
    images, classes, metas, keys = zip(*batch, strict=True)
    return torch.stack(images), [int(c) for c in classes], list(metas), list(keys)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # decoding workers must not compete with the model's threads


class _PromptCache:
    """Each distinct prompt encoded once, in batches, as batches bring new ones."""

    def __init__(self, bundle: ClipBundle, batch_size: int) -> None:
        self.bundle, self.batch_size = bundle, batch_size
        self.rows: dict[str, int] = {}
        self.chunks: list[torch.Tensor] = []
        self.matrix: torch.Tensor | None = None
        self.seconds = 0.0

    def lookup(self, prompts: list[str | None]) -> torch.Tensor:
        new = list(dict.fromkeys(p for p in prompts if p and p not in self.rows))
        if new:
            start = time.perf_counter()
            feats = text_features(self.bundle, new, batch_size=self.batch_size)
            self.seconds += time.perf_counter() - start
            for p in new:
                self.rows[p] = len(self.rows)
            self.chunks.append(feats)
            self.matrix = None
        if self.matrix is None and self.chunks:
            self.matrix = torch.cat(self.chunks)
            self.chunks = [self.matrix]
        return torch.tensor([self.rows[p] if p else -1 for p in prompts], device=self.bundle.device)


def score_shards(
    source: str | os.PathLike[str],
    bundle: ClipBundle,
    classnames: Sequence[str],
    templates: Sequence[str],
    *,
    batch_size: int = 64,
    num_workers: int = 1,
    text_batch_size: int = 256,
) -> ScoreResult:
    """Score every sample of the shard directory ``source`` with CLIP zero-shot over ``classnames``.

    The text head (``templates`` averaged per class) is encoded once; images stream through a DataLoader
    over :func:`synthdata.shards.wds_pipeline`. Samples the reader skips (undecodable, partial or in an
    unreadable shard) come back in ``corrupt``, found by comparing the keys seen with the sidecars' lists.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    source = Path(source)
    index = shard_index(source)
    check_classes(source, classnames, index)
    start = time.perf_counter()
    head = zeroshot_weights(bundle, classnames, templates, batch_size=text_batch_size)  # (C, D)
    text_seconds = time.perf_counter() - start
    scale = logit_scale(bundle)
    prompts = _PromptCache(bundle, text_batch_size)
    errors = ErrorCounter()
    pipeline = wds_pipeline(
        source,
        transform=bundle.preprocess,
        shuffle=0,
        split_by_node=False,
        with_meta=True,
        with_key=True,
        on_error="warn",
        errors=errors,
    )
    loader = torch.utils.data.DataLoader(
        pipeline,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=bundle.device.type == "cuda",
        worker_init_fn=_worker_init if num_workers else None,
        prefetch_factor=4 if num_workers else None,
    )
    names = [_norm_name(c) for c in classnames]
    scores: dict[str, SampleScore] = {}
    for images, classes, metas, keys in loader:
        for cls, meta, key in zip(classes, metas, keys, strict=True):
            name = meta.get("class_name") if isinstance(meta, dict) else None
            if cls >= len(classnames):
                raise ClassListError(f"sample {key!r} has class {cls}, outside the {len(classnames)} classes")
            if isinstance(name, str) and _norm_name(name) != names[cls]:
                raise ClassListError(
                    f"sample {key!r} of class {cls} is labelled {name!r} but the class list says "
                    f"{classnames[cls]!r}; the class list does not match the shards"
                )
        feats = image_features(bundle, images)  # (B, D) fp32, normalised
        probs = (scale * feats @ head.T).softmax(dim=-1)
        target = torch.tensor(classes, device=probs.device)
        confidence = probs.gather(1, target[:, None])[:, 0]
        top_conf, top1 = probs.max(dim=1)
        batch_prompts = [m.get("prompt") if isinstance(m, dict) else None for m in metas]
        batch_prompts = [p if isinstance(p, str) and p.strip() else None for p in batch_prompts]
        rows = prompts.lookup(batch_prompts)
        clip_scores: list[float | None] = [None] * len(keys)
        if prompts.matrix is not None and bool((rows >= 0).any()):
            cos = (feats * prompts.matrix[rows.clamp(min=0)]).sum(dim=1) * 100.0
            clip_scores = [
                float(s) if r >= 0 else None for s, r in zip(cos.tolist(), rows.tolist(), strict=True)
            ]
        for i, key in enumerate(keys):
            scores[key] = SampleScore(
                key=key,
                class_index=classes[i],
                shard=index.get(key, ("?", -1))[0],
                confidence=float(confidence[i]),
                top1=int(top1[i]),
                top1_confidence=float(top_conf[i]),
                clip_score=clip_scores[i],
            )
    seconds = time.perf_counter() - start
    corrupt = [
        SampleScore(key=key, class_index=cls, shard=shard, error="unreadable: skipped by the reader")
        for key, (shard, cls) in sorted(index.items())
        if key not in scores
    ]
    if corrupt:
        log.warning("%d sample(s) could not be read and were skipped", len(corrupt))
    return ScoreResult(
        scores=[scores[k] for k in sorted(scores)],
        corrupt=corrupt,
        seconds=seconds,
        text_seconds=text_seconds + prompts.seconds,
        error_messages=list(errors.messages),
    )
