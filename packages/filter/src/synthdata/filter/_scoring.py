"""Streaming, batched CLIP scoring of shards: the zero-shot head built once, images in DataLoader batches.

Batches never span two input shards, so a shard's scores do not depend on which shards were scored before
it: a resumed run (finished shards loaded from checkpoints) gives bit-identical scores.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from tqdm import tqdm

from synthdata.clip import ClipBundle, image_features, logit_scale, text_features, zeroshot_weights
from synthdata.filter._cache import ScoreCache
from synthdata.filter._types import SampleScore, ScoreResult
from synthdata.shards import ErrorCounter, ShardDataset, read_dataset_json, wds_pipeline
from synthdata.shards.errors import DatasetInfoError

log = logging.getLogger(__name__)


class ClassListError(ValueError):
    """The class list given does not match the shards' class indices or names."""


def _norm_name(name: str) -> str:
    return " ".join(name.replace("_", " ").lower().split())


def _dataset_classes(source: str | os.PathLike[str] | ShardDataset) -> list[str] | None:
    """The class names of the input's ``dataset.json`` (None without one); a dataset opened with its
    ``dataset.json`` is not read again."""
    if isinstance(source, ShardDataset):
        if source.info is not None:
            return list(source.info.classes)
        source = source.location
    try:
        return read_dataset_json(source).classes
    except DatasetInfoError:
        return None


def check_classes(source: str | os.PathLike[str] | ShardDataset, classnames: Sequence[str], index: dict) -> None:
    """Raise :class:`ClassListError` if ``classnames`` cannot be the shards' classes.

    The list must have exactly the length and (ignoring case, ``_`` vs space) the names of the input's
    ``dataset.json`` when there is one, and cover every class index the sidecars list.
    """
    classnames = list(classnames)
    if not classnames:
        raise ClassListError("the class list is empty")
    shard_classes = _dataset_classes(source)
    if isinstance(source, ShardDataset):
        source = source.location
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


def _identity(batch: Any) -> Any:
    return batch


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # decoding workers must not compete with the model's threads


class _ShardBatcher:
    """Pipeline stage run in the loader workers: batches that never span two shards.

    Each item is a dict with ``shard``, ``images`` (a stacked tensor, or None for an empty item), ``classes``,
    ``metas``, ``keys``, ``final`` (no more samples of that shard follow) and the reader's error ``messages``
    since the previous item (the error counter lives in the worker, so its messages travel with the batches).
    """

    def __init__(self, shard_of: dict[str, str], batch_size: int, errors: ErrorCounter) -> None:
        self.shard_of, self.batch_size, self.errors = shard_of, batch_size, errors

    def __call__(self, source: Iterator[tuple]) -> Iterator[dict[str, Any]]:
        current: str | None = None
        buf: list[tuple] = []
        told = 0

        def item(final: bool) -> dict[str, Any]:
            nonlocal buf, told
            messages = self.errors.messages[told:]
            told = len(self.errors.messages)
            images, classes, metas, keys = zip(*buf, strict=True) if buf else ((), (), (), ())
            out = {
                "shard": current,
                "images": torch.stack(images) if buf else None,
                "classes": [int(c) for c in classes],
                "metas": list(metas),
                "keys": list(keys),
                "final": final,
                "messages": messages,
            }
            buf = []
            return out

        for sample in source:
            shard = self.shard_of.get(sample[3], "?")
            if current is not None and shard != current:
                yield item(final=True)
            current = shard
            buf.append(sample)
            if len(buf) == self.batch_size:
                yield item(final=False)
        if current is not None or len(self.errors.messages) > told:
            yield item(final=current is not None)


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


class _Scorer:
    """The zero-shot head, built once, applied to batches of preprocessed images."""

    def __init__(
        self,
        bundle: ClipBundle,
        classnames: Sequence[str],
        templates: Sequence[str],
        text_batch_size: int,
        head_names: Sequence[str] | None = None,
    ) -> None:
        start = time.perf_counter()
        self.bundle = bundle
        self.classnames = list(classnames)
        self.names = [_norm_name(c) for c in classnames]
        text = list(head_names) if head_names is not None else self.classnames
        self.head = zeroshot_weights(bundle, text, templates, batch_size=text_batch_size)  # (C, D)
        self.scale = logit_scale(bundle)
        self.prompts = _PromptCache(bundle, text_batch_size)
        self.head_seconds = time.perf_counter() - start

    def check_labels(self, classes: list[int], metas: list[Any], keys: list[str]) -> None:
        for cls, meta, key in zip(classes, metas, keys, strict=True):
            name = meta.get("class_name") if isinstance(meta, dict) else None
            if not 0 <= cls < len(self.classnames):
                raise ClassListError(
                    f"sample {key!r} has class {cls}, outside the {len(self.classnames)} classes"
                )
            if isinstance(name, str) and _norm_name(name) != self.names[cls]:
                raise ClassListError(
                    f"sample {key!r} of class {cls} is labelled {name!r} but the class list says "
                    f"{self.classnames[cls]!r}; the class list does not match the shards"
                )

    def __call__(
        self, images: torch.Tensor, classes: list[int], metas: list[Any], keys: list[str], shard: str
    ) -> list[SampleScore]:
        self.check_labels(classes, metas, keys)
        feats = image_features(self.bundle, images)  # (B, D) fp32, normalised
        probs = (self.scale * feats @ self.head.T).softmax(dim=-1)
        target = torch.tensor(classes, device=probs.device)
        confidence = probs.gather(1, target[:, None])[:, 0]
        top_conf, top1 = probs.max(dim=1)
        batch_prompts = [m.get("prompt") if isinstance(m, dict) else None for m in metas]
        batch_prompts = [p if isinstance(p, str) and p.strip() else None for p in batch_prompts]
        rows = self.prompts.lookup(batch_prompts)
        clip_scores: list[float | None] = [None] * len(keys)
        if self.prompts.matrix is not None and bool((rows >= 0).any()):
            cos = (feats * self.prompts.matrix[rows.clamp(min=0)]).sum(dim=1) * 100.0
            clip_scores = [
                float(s) if r >= 0 else None for s, r in zip(cos.tolist(), rows.tolist(), strict=True)
            ]
        # One device-to-host copy per column: indexing a (CUDA) tensor per sample syncs three times a sample.
        columns = zip(keys, classes, confidence.tolist(), top1.tolist(), top_conf.tolist(), clip_scores, strict=True)
        return [
            SampleScore(key=key, class_index=cls, shard=shard, confidence=conf, top1=top, top1_confidence=tconf,
                        clip_score=cs)
            for key, cls, conf, top, tconf, cs in columns
        ]


class _ShardRows:
    """The scores of the shards being scored; each shard is checkpointed and moved to ``done`` once finished.

    A finished shard's rows follow its sidecar's key order; keys the sidecar lists but the reader skipped
    become unreadable rows.
    """

    def __init__(
        self,
        names: Sequence[str],
        sidecars: dict[str, dict[str, Any]],
        done: dict[str, list[SampleScore]],
        cache: ScoreCache | None,
    ) -> None:
        self.pending: dict[str, dict[str, SampleScore]] = {name: {} for name in names}
        self.sidecars, self.done, self.cache = sidecars, done, cache

    def add(self, shard: str, scores: list[SampleScore]) -> None:
        self.pending.setdefault(shard, {}).update((s.key, s) for s in scores)

    def finish(self, name: str) -> None:
        seen = self.pending.pop(name, {})
        side = self.sidecars.get(name, {})
        keys = list(side.get("keys") or [])
        classes = list(side.get("classes") or [])
        rows = []
        for i, key in enumerate(keys):
            cls = int(classes[i]) if i < len(classes) else -1
            rows.append(seen.pop(key, None) or _unreadable(key, cls, name))
        rows.extend(seen[k] for k in sorted(seen))  # keys the sidecar does not list (not expected)
        self.done[name] = rows
        if self.cache is not None:
            self.cache.save(name, side, rows)

    def finish_all(self, names: Sequence[str]) -> None:
        """Finish every shard of ``names`` still open; samples of no known shard go to ``done["?"]``."""
        for name in [n for n in names if n in self.pending]:
            self.finish(name)  # shards the reader gave up on before their first sample
        leftovers = [s for rows in self.pending.values() for s in rows.values()]  # keys of no known shard
        self.done["?"] = sorted(leftovers, key=lambda s: s.key)


def _load_checkpoints(
    cache: ScoreCache | None, sidecars: dict[str, dict[str, Any]]
) -> dict[str, list[SampleScore]]:
    """The scores of the shards ``cache`` holds checkpoints for (by shard name)."""
    done: dict[str, list[SampleScore]] = {}
    if cache is None:
        return done
    for name, side in sidecars.items():
        cached = cache.load(name, side)
        if cached is not None:
            done[name] = cached
    if done:
        log.info("%d of %d shard(s) already scored (checkpoints in %s)", len(done), len(sidecars), cache.directory)
    return done


def _batch_loader(
    shards: Sequence[str],
    bundle: ClipBundle,
    index: dict[str, tuple[str, int]],
    batch_size: int,
    num_workers: int,
) -> torch.utils.data.DataLoader:
    """Preprocessed images of ``shards`` in key order, in :class:`_ShardBatcher` items, decoded by workers."""
    errors = ErrorCounter()
    pipeline = wds_pipeline(
        list(shards),
        transform=bundle.preprocess,
        shuffle=0,
        split_by_node=False,
        with_meta=True,
        with_key=True,
        on_error="warn",
        errors=errors,
    )
    shard_of = {key: shard for key, (shard, _) in index.items()}
    pipeline.append(_ShardBatcher(shard_of, batch_size, errors))
    return torch.utils.data.DataLoader(
        pipeline,
        batch_size=None,
        num_workers=num_workers,
        collate_fn=_identity,
        pin_memory=bundle.device.type == "cuda",
        worker_init_fn=_worker_init if num_workers else None,
        prefetch_factor=4 if num_workers else None,
    )


def _score_batches(
    loader: Iterable[dict[str, Any]], scorer: _Scorer, rows: _ShardRows, total: int, progress: bool
) -> tuple[list[str], int]:
    """Score every batch, finishing each shard as its last batch passes; the reader's messages and the count."""
    messages: list[str] = []
    scored = 0
    with tqdm(total=total, unit="img", disable=not progress, desc="scoring") as bar:
        for item in loader:
            messages.extend(item["messages"])
            shard = item["shard"]
            if item["images"] is not None:
                scores = scorer(item["images"], item["classes"], item["metas"], item["keys"], shard)
                rows.add(shard, scores)
                scored += len(scores)
                bar.update(len(scores))
            if item["final"] and shard in rows.sidecars:
                rows.finish(shard)
    return messages, scored


def score_shards(
    source: str | os.PathLike[str] | ShardDataset,
    bundle: ClipBundle | Callable[[], ClipBundle],
    classnames: Sequence[str],
    templates: Sequence[str],
    *,
    batch_size: int = 64,
    num_workers: int = 1,
    text_batch_size: int = 256,
    cache: ScoreCache | None = None,
    progress: bool = False,
    head_names: Sequence[str] | None = None,
) -> ScoreResult:
    """Score every sample of ``source`` (a shard directory, or one already opened as a :class:`ShardDataset`:
    its shards only) with CLIP zero-shot over ``classnames``.

    ``head_names`` (default: ``classnames``) are the names the text head is built from, when they differ
    from the shards' class names (the official filter's one prompt a class, e.g. ``"a Annual Crop Land"``).

    The text head (``templates`` averaged per class) is encoded once; images stream through a DataLoader
    over :func:`synthdata.shards.wds_pipeline`, in batches of up to ``batch_size`` that never span two shards.
    ``bundle`` may be a function that loads the model: it is called only if some shard needs scoring. With
    ``cache``, shards checkpointed by an earlier run are loaded instead of scored, and each shard is
    checkpointed as soon as it is finished. Samples the reader skips (undecodable, partial or in an unreadable
    shard) come back in ``corrupt``, found by comparing the keys seen with the sidecars' lists.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    started = time.perf_counter()
    dataset = source if isinstance(source, ShardDataset) else ShardDataset.open(source, read_info=False)
    sidecars = {entry.name: entry.sidecar for entry in dataset.shards}
    index = dataset.key_index()
    check_classes(dataset, classnames, index)
    done = _load_checkpoints(cache, sidecars)
    resumed = len(done)
    todo = [entry for entry in dataset.shards if entry.name not in done]
    messages: list[str] = []
    text_seconds = 0.0
    scored_now = 0
    if todo:
        if not isinstance(bundle, ClipBundle):
            bundle = bundle()
        scorer = _Scorer(bundle, classnames, templates, text_batch_size, head_names)
        shard_rows = _ShardRows([e.name for e in todo], sidecars, done, cache)
        loader = _batch_loader([e.location for e in todo], bundle, index, batch_size, num_workers)
        total = sum(e.count for e in todo)
        messages, scored_now = _score_batches(loader, scorer, shard_rows, total, progress)
        shard_rows.finish_all([e.name for e in todo])
        text_seconds = scorer.head_seconds + scorer.prompts.seconds
    everything = sorted((s for rows in done.values() for s in rows), key=lambda s: s.key)
    scores = [s for s in everything if s.error is None]
    corrupt = [s for s in everything if s.error is not None]
    if corrupt:
        log.warning("%d sample(s) could not be read and were skipped", len(corrupt))
    return ScoreResult(
        scores=scores,
        corrupt=corrupt,
        seconds=time.perf_counter() - started,
        text_seconds=text_seconds,
        error_messages=messages[:100],
        scored_now=scored_now,
        shards_resumed=resumed,
    )


def _unreadable(key: str, cls: int, shard: str) -> SampleScore:
    return SampleScore(key=key, class_index=cls, shard=shard, error="unreadable: skipped by the reader")
