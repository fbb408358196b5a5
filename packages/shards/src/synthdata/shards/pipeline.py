"""A webdataset pipeline over shards, for training: shard shuffling, node/worker splitting, resampling."""

from __future__ import annotations

import logging
import os
import random
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import webdataset as wds

from synthdata.shards import storage
from synthdata.shards.encoding import IMAGE_EXTENSIONS
from synthdata.shards.seeding import item_seed

log = logging.getLogger(__name__)

IMAGE_KEYS = ";".join(IMAGE_EXTENSIONS)


@dataclass
class ErrorCounter:
    """Counts the samples/shards a ``warn`` pipeline skipped; shared across the pipeline's stages."""

    count: int = 0
    messages: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, exn: Exception) -> bool:
        with self._lock:
            self.count += 1
            if len(self.messages) < 100:
                self.messages.append(repr(exn))
        warnings.warn(f"synthdata.shards: skipped a corrupt sample or shard: {exn!r}", stacklevel=2)
        return True  # keep going


def resolve_urls(source: str | os.PathLike[str] | Sequence[str]) -> list[str]:
    """Shard URLs from a directory (its complete shards only; local or a directory URL), a brace pattern /
    URL, or a list of them."""
    if isinstance(source, (list, tuple)):
        return [str(s) for s in source]
    text = os.fspath(source)
    if text.endswith(".tar") or "{" in text or text.startswith("pipe:"):
        return list(wds.shardlists.expand_urls(text))
    if storage.is_url(text) or Path(text).is_dir():
        from synthdata.shards.dataset import ShardDataset

        urls = ShardDataset.open(text, read_info=False).urls
        if not urls:
            raise FileNotFoundError(f"{text} holds no complete shards (no *.idx.json sidecars)")
        return urls
    return list(wds.shardlists.expand_urls(text))


def _open_shards(src: Any, handler: Callable[[Exception], bool] = wds.reraise_exception) -> Any:
    """``{"url", "stream"}`` for each shard: local files and ``s3://``/``gs://``/``http(s)://`` through
    :mod:`synthdata.shards.storage` (fsspec, no shell); other forms (``pipe:``) through webdataset's gopen."""
    for sample in src:
        url = sample["url"]
        try:
            if url.startswith("pipe:") or storage.scheme_of(url) not in ("", "file", *storage.BACKENDS):
                stream = wds.gopen(url)
            else:
                stream = storage.open_stream(url)
            yield {**sample, "stream": stream}
        except Exception as exn:
            exn.args = (*exn.args, url)
            if handler(exn):
                continue
            break


def _is_complete(sample: dict[str, Any]) -> bool:
    return "cls" in sample and any(k in sample for k in IMAGE_EXTENSIONS)


#: The default sample shuffle buffer of training pipelines: timm's (8192 samples, the first 2048 before any
#: sample leaves). Generated shards mix classes (the plan's permutation), so the buffer only has to break up
#: a shard's order; memory is about ``bufsize`` encoded samples per DataLoader worker (~10 kB a 64 px PNG).
SHUFFLE_BUFFER = 8192


def shuffle_initial(bufsize: int) -> int:
    """Samples the buffer holds before yielding the first: a quarter of it (timm's 2048 of 8192)."""
    return max(1, bufsize // 4)


class SeededSampleShuffle(wds.PipelineStage):
    """A sample shuffle buffer whose order is a pure function of (seed, epoch, rank, worker).

    webdataset's ``shuffle`` seeds itself from the clock, so a resumed run would see other batches. Each
    ``run`` (one pass over the data) advances the epoch; call :meth:`set_epoch` when the pipeline object is
    rebuilt every epoch (for example in non-persistent DataLoader workers).
    """

    def __init__(self, bufsize: int, initial: int, seed: int) -> None:
        self.bufsize, self.initial, self.seed = bufsize, initial, seed
        self.epoch = -1

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass use ``epoch`` (the pass after that uses ``epoch + 1``)."""
        self.epoch = epoch - 1

    def run(self, src):
        self.epoch += 1
        rank, _, worker, _ = wds.utils.pytorch_worker_info()
        rng = random.Random(item_seed(self.seed, f"epoch{self.epoch}/rank{rank}/worker{worker}", stream="shuffle"))
        return wds.shuffle(self.bufsize, self.initial, rng=rng)(src)


def _closing_streams(sources: Any) -> Any:
    """Pass opened shards through, closing each stream once the tar reader moves past it.

    webdataset leaves the file to the garbage collector: the descriptor stays open until then (a
    ``ResourceWarning`` per shard), even when the shard was truncated and its reader raised.
    """
    for source in sources:
        try:
            yield source
        finally:
            stream = source.get("stream") if isinstance(source, dict) else None
            if stream is not None:
                stream.close()


def _tar_samples(src: Any, handler: Callable[[Exception], bool] = wds.reraise_exception) -> Any:
    streams = _open_shards(src, handler=handler)
    files = wds.tariterators.tar_file_expander(_closing_streams(streams), handler=handler)
    return wds.tariterators.group_by_keys(files, handler=handler)


#: ``webdataset.tarfile_to_samples`` that closes every shard's file as soon as it has been read.
tar_samples = wds.pipelinefilter(_tar_samples)


def wds_pipeline(
    source: str | os.PathLike[str] | Sequence[str],
    *,
    decode: str = "pil",
    transform: Callable[[Any], Any] | None = None,
    shuffle: int = SHUFFLE_BUFFER,
    resampled: bool = False,
    epoch_length: int | None = None,
    batch_size: int | None = None,
    split_by_node: bool = True,
    split_by_worker: bool = True,
    on_error: Literal["raise", "warn"] = "raise",
    seed: int = 0,
    with_meta: bool = False,
    with_key: bool = False,
    errors: ErrorCounter | None = None,
) -> wds.DataPipeline:
    """Build a ``webdataset.DataPipeline`` yielding ``(image, cls)``, then ``meta`` and ``key`` when asked.

    - ``source``: a shard directory, a brace-pattern URL, or a list of URLs.
    - ``resampled``: draw shards with replacement forever (per node and worker seeds), cut into epochs of
      ``epoch_length`` samples per DataLoader worker; otherwise each shard is read once per epoch, split
      across nodes (``RANK``/``WORLD_SIZE`` or torch.distributed) and DataLoader workers.
    - ``on_error``: ``"raise"`` fails on the first corrupt shard or sample; ``"warn"`` skips it, warns and
      counts it in ``errors``. Partial samples (no image or no class) are never yielded.
    - ``seed``: shard order and the sample shuffle buffer are seeded from it (per epoch, rank and worker), so
      the same seed and layout give the same sample order on every run.
    """
    urls = resolve_urls(source)
    handler = (
        wds.reraise_exception if on_error == "raise" else (errors if errors is not None else ErrorCounter())
    )
    stages: list[Any] = []
    if resampled:
        stages.append(wds.ResampledShards(urls, seed=seed, deterministic=True))
    else:
        stages.append(wds.SimpleShardList(urls))
        if shuffle:
            stages.append(wds.detshuffle(bufsize=len(urls), initial=len(urls), seed=seed))
        if split_by_node:
            stages.append(wds.split_by_node)
        if split_by_worker:
            stages.append(wds.split_by_worker)
    stages.append(tar_samples(handler=handler))
    if shuffle:
        stages.append(SeededSampleShuffle(shuffle, shuffle_initial(shuffle), seed))
    stages.append(wds.select(_is_complete))
    stages.append(wds.decode(decode, handler=handler))
    fields = [IMAGE_KEYS, "cls"] + (["json"] if with_meta else []) + (["__key__"] if with_key else [])
    stages.append(wds.to_tuple(*fields, handler=handler))
    if transform is not None:
        stages.append(wds.map_tuple(transform, handler=handler))
    if batch_size is not None:
        stages.append(wds.batched(batch_size, partial=not resampled))
    pipeline = wds.DataPipeline(*stages)
    if resampled:
        if epoch_length is None:
            raise ValueError("resampled=True needs epoch_length (samples, or batches when batch_size is set)")
        pipeline = pipeline.with_epoch(epoch_length)
    elif epoch_length is not None:
        pipeline = pipeline.with_epoch(epoch_length)
    return pipeline
