"""Training batches streamed from shards: which shards a rank reads, how long an epoch is, the loaders.

Epoch rules (the same on every rank, so DDP sees the same number of steps everywhere):

- **Read once per epoch** (default): the epoch's shard order is a permutation seeded by (seed, epoch), the
  same on all ranks; rank ``r`` of ``W`` reads shards ``r, r+W, r+2W, …`` of it (webdataset's node split),
  and its DataLoader workers split those again. Every rank runs ``steps = floor(epoch_samples / (W × B))``
  micro-batches (``epoch_samples`` = the dataset's sample count unless given). A rank whose shards hold
  fewer full batches (uneven shard sizes, partial batches at worker ends) reads its *own* shards again from
  the start to fill the epoch; ranks never read each other's shards within an epoch.
- **Resampled** (``--resampled``): each rank and worker draws shards with replacement from a generator
  seeded by (seed, epoch, rank, worker); an epoch is ``steps`` micro-batches as above.

Every random choice of the data path (shard order, sample shuffle buffer, resampling) is seeded from
(seed, epoch, rank, worker); DataLoader workers are seeded from (seed, epoch, rank, pass) and in-process
augmentations draw from generators restored from the checkpoint, so a run resumed at an epoch boundary, or
mid-epoch after replaying the batches it had consumed, sees exactly the batches an uninterrupted run would
have seen.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import multiprocessing
import os
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import webdataset as wds
from torch.utils.data import DataLoader

from synthdata.pretrain.config import PretrainError, TrainConfig
from synthdata.shards import ShardDataset, ShardError, item_seed, resolve_urls, storage, tar_samples
from synthdata.shards.encoding import IMAGE_EXTENSIONS
from synthdata.shards.pipeline import shuffle_initial
from synthdata.shards.storage import check_location

log = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor, list[str], list[str]]
"""``(images, targets, sample keys, shard names)`` of one micro-batch."""

IMAGE_KEYS = ";".join(IMAGE_EXTENSIONS)


@dataclass(frozen=True, slots=True)
class ShardSource:
    """The shards to train on and what is known about them."""

    urls: list[str]
    num_classes: int
    classes: list[str] | None
    counts: list[int] | None
    """Samples per shard (from the sidecars of a shard directory); None for URL patterns."""

    @property
    def total(self) -> int | None:
        return sum(self.counts) if self.counts is not None else None


def _is_pattern(data: str) -> bool:
    return data.startswith("pipe:") or "{" in data or "::" in data or data.endswith(".tar")


def _in_shard_directory(pattern: str) -> bool:
    """Whether a brace pattern names ``.tar`` shards of one directory that has a ``dataset.json``."""
    if pattern.startswith("pipe:") or "::" in pattern:
        return False
    directory = pattern.rsplit("/", 1)[0] if "/" in pattern else "."
    return "{" not in directory and storage.exists(storage.join(directory, "dataset.json"))


def _from_directory(data: str, num_classes: int | None) -> ShardSource:
    """A shard directory, local or a URL: classes from ``dataset.json``, sample counts from the sidecars."""
    try:
        dataset = ShardDataset.open(data, flag="--data", require_info=True)
    except FileNotFoundError as exc:
        if _is_pattern(data):  # its directory holds a dataset.json: some shards it names are not complete
            raise PretrainError(str(exc)) from exc
        raise PretrainError(
            f"--data {data}: no such directory; pass a shard directory (made by synth-generate, synth-filter "
            "or `synth-shards make-demo`), its URL, or a shard URL pattern"
        ) from exc
    except (ShardError, OSError) as exc:
        raise PretrainError(f"--data {data}: {exc}") from exc
    if not dataset.shards:
        raise PretrainError(
            f"--data {data} holds no complete shards (no *.idx.json sidecars); write or verify it with "
            "synth-shards first"
        )
    classes = dataset.classes
    if num_classes is not None and num_classes != len(classes):
        raise PretrainError(
            f"--num-classes {num_classes} does not match {data}/dataset.json, which lists "
            f"{len(classes)} classes; drop --num-classes or fix the dataset"
        )
    return ShardSource(dataset.urls, len(classes), classes, [s.count for s in dataset.shards])


def resolve_source(data: str, num_classes: int | None = None) -> ShardSource:
    """Resolve ``--data``: a shard directory, local or a URL (``s3://``, ``gs://``, ``http(s)://``; classes
    from its ``dataset.json``, counts from its sidecars), or a shard URL pattern (then ``--num-classes``).

    A directory's sidecars give the per-shard sample counts and class indices, checked against the class list
    (by :class:`synthdata.shards.ShardDataset`) before any process starts training.
    """
    try:
        check_location(data, flag="--data")
    except ShardError as exc:
        raise PretrainError(str(exc)) from exc
    if not _is_pattern(data) or _in_shard_directory(data):
        return _from_directory(data, num_classes)  # a pattern of one directory's shards reads its index too
    if num_classes is None:
        raise PretrainError(
            f"--data {data} is a URL pattern outside a shard directory (no dataset.json beside it): pass "
            "--num-classes and --epoch-samples"
        )
    try:
        urls = resolve_urls(data)
    except (ValueError, OSError) as exc:
        raise PretrainError(f"--data {data}: {exc}") from exc
    if not urls:
        raise PretrainError(f"--data {data} expands to no shard URLs")
    return ShardSource(urls, num_classes, None, None)


@dataclass(frozen=True, slots=True)
class EpochPlan:
    """How long an epoch is, the same on every rank."""

    steps: int
    """Micro-batches per rank per epoch (a multiple of accum_steps)."""
    workers: int
    epoch_samples: int
    """Samples per epoch over all ranks (steps × batch × world)."""


def plan_epochs(source: ShardSource, cfg: TrainConfig, world_size: int) -> EpochPlan:
    """Steps per epoch and DataLoader workers per rank, with clear errors for data too small to split."""
    n_shards = len(source.urls)
    if not cfg.resampled and n_shards < world_size:
        raise PretrainError(
            f"{n_shards} shard(s) cannot be split over {world_size} ranks: each rank reads whole shards, so "
            f"write at least {world_size} shards (smaller --shard-size) or use --resampled"
        )
    wanted = cfg.epoch_samples if cfg.epoch_samples is not None else source.total
    if wanted is None:
        raise PretrainError("--data is a URL pattern, so the epoch length is unknown: pass --epoch-samples")
    per_step = world_size * cfg.batch_size
    steps = (wanted // per_step) // cfg.accum_steps * cfg.accum_steps
    if steps < 1:
        raise PretrainError(
            f"an epoch of {wanted} samples is smaller than one optimizer update of {per_step * cfg.accum_steps} "
            f"samples (batch {cfg.batch_size} × {world_size} ranks × {cfg.accum_steps} accumulation steps); "
            "lower --batch-size or --accum-steps, or raise --epoch-samples"
        )
    workers = cfg.workers
    if not cfg.resampled and n_shards // world_size < workers:
        workers = n_shards // world_size
        log.info(
            "using %d DataLoader workers per rank (not %d): there are %d shards for %d ranks",
            workers,
            cfg.workers,
            n_shards,
            world_size,
        )
    cpus = cpus_per_process()
    if workers > cpus:
        log.info("using %d DataLoader workers per rank (not %d): %d CPUs per local rank", cpus, workers, cpus)
        workers = cpus
    if cfg.epoch_samples is None and source.total is not None and steps * per_step < source.total:
        log.info(
            "each epoch uses %d of %d samples (whole batches of %d on every rank)",
            steps * per_step,
            source.total,
            per_step,
        )
    return EpochPlan(steps=steps, workers=workers, epoch_samples=steps * per_step)


def cpus_per_process() -> int:
    """CPUs this process may use, shared by the ranks on this node (torchrun's ``LOCAL_WORLD_SIZE``)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        local = max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)
    except ValueError:
        local = 1
    return max(cpus // local, 1)


def epoch_seed(seed: int, epoch: int) -> int:
    """The data seed of an epoch (0-based), identical on every rank so the shard permutation agrees."""
    return item_seed(seed, f"epoch-{epoch}", stream="pretrain-data") & 0x7FFFFFFF


class SkipCounter:
    """The ``--on-error warn`` handler: skips a corrupt sample or shard, warns, and counts it in shared memory,
    so skips inside DataLoader worker processes are counted too."""

    def __init__(self) -> None:
        self._count = multiprocessing.Value("q", 0)

    @property
    def count(self) -> int:
        return int(self._count.value)

    def __call__(self, exn: Exception) -> bool:
        with self._count.get_lock():
            self._count.value += 1
        warnings.warn(f"synthdata.pretrain: skipped a corrupt sample or shard: {exn!r}", stacklevel=2)
        return True  # keep going


def _is_complete(sample: dict[str, Any]) -> bool:
    return "cls" in sample and any(k in sample for k in IMAGE_EXTENSIONS)


def _shard_name(url: Any) -> str:
    return os.path.basename(str(url))


def _seeded_shuffle(bufsize: int, seed: int) -> Callable[[Iterator[Any]], Iterator[Any]]:
    """webdataset's sample shuffle buffer, seeded per (seed, rank, worker) when the stage starts iterating
    (the epoch is part of ``seed``), holding :func:`synthdata.shards.pipeline.shuffle_initial` samples before
    the first leaves, as ``synthdata.shards.wds_pipeline`` does."""

    def stage(src: Iterator[Any]) -> Iterator[Any]:
        rank, _, worker, _ = wds.utils.pytorch_worker_info()
        worker_seed = item_seed(seed, f"shuffle-rank{rank}-worker{worker}", stream="pretrain-data")
        return wds.shuffle(bufsize, initial=shuffle_initial(bufsize), seed=worker_seed)(src)

    return stage


def shard_pipeline(
    source: ShardSource,
    cfg: TrainConfig,
    plan: EpochPlan,
    seed: int,
    transform: Callable[[Any], torch.Tensor],
    errors: SkipCounter | None = None,
) -> wds.DataPipeline:
    """The stages of ``synthdata.shards.wds_pipeline`` with every random choice seeded by ``seed``.

    Yields ``(image, cls, key, shard name)``. Read-once mode: the same shard permutation on every rank, then
    webdataset's node split (``RANK``/``WORLD_SIZE``) and worker split. Resampled: shards drawn with
    replacement per (seed, rank, worker), ``ceil(steps / workers) × batch`` samples per worker.
    """
    handler = wds.reraise_exception if cfg.on_error == "raise" else (errors or SkipCounter())
    stages: list[Any] = []
    if cfg.resampled:
        stages.append(wds.ResampledShards(source.urls, seed=seed, deterministic=True))
    else:
        stages.append(wds.SimpleShardList(source.urls))
        stages.append(wds.detshuffle(bufsize=len(source.urls), initial=len(source.urls), seed=seed))
        stages.append(wds.split_by_node)
        stages.append(wds.split_by_worker)
    stages.append(tar_samples(handler=handler))  # closes each shard's file once read
    if cfg.shuffle:
        stages.append(_seeded_shuffle(cfg.shuffle, seed))
    stages.append(wds.select(_is_complete))
    stages.append(wds.decode("pil", handler=handler))
    stages.append(wds.to_tuple(IMAGE_KEYS, "cls", "__key__", "__url__", handler=handler))
    stages.append(wds.map_tuple(transform, int, str, _shard_name, handler=handler))
    pipeline = wds.DataPipeline(*stages)
    if cfg.resampled:
        per_worker = math.ceil(plan.steps / max(plan.workers, 1)) * cfg.batch_size
        pipeline = pipeline.with_epoch(per_worker)
    return pipeline


def _ignore_in_worker(signums: tuple[int, ...], worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: the preemption signals do not kill this worker.

    A signal sent to the whole process group (torchrun forwards SIGTERM to each rank's group) or to every
    process of a job (Slurm) must not kill a worker mid-epoch: the training process handles it (saves at the
    next update, then stops) and its workers exit with it. The signals stay blocked (inherited from
    :func:`_forking_workers`, so none can arrive before this runs) and a thread takes them: it drops them,
    except a SIGTERM from the training process itself, the DataLoader's last resort for a worker that does not
    exit when asked, on which the worker exits at once (as torch's own handler does)."""
    parent = os.getppid()
    signal.pthread_sigmask(signal.SIG_BLOCK, signums)  # already blocked unless the worker was not forked

    def take() -> None:
        while True:
            got = signal.sigwaitinfo(signums)
            if got.si_signo == signal.SIGTERM and got.si_pid == parent:
                os._exit(0)

    threading.Thread(target=take, name="preempt-signals", daemon=True).start()


@contextlib.contextmanager
def _forking_workers(signums: tuple[int, ...]) -> Iterator[None]:
    """Block ``signums`` while the DataLoader forks its workers: a child inherits the mask, so a signal that
    arrives before its ``worker_init_fn`` takes them stays pending instead of killing it (torch's worker
    installs a SIGTERM handler that exits); this process receives its own copy once unblocked."""
    if not signums or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signums)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def epoch_batches(
    source: ShardSource,
    cfg: TrainConfig,
    plan: EpochPlan,
    epoch: int,
    transform: Callable[[Any], torch.Tensor],
    *,
    pin_memory: bool = False,
    errors: SkipCounter | None = None,
    ignore_signals: tuple[int, ...] = (),
) -> Iterator[Batch]:
    """Yield exactly ``plan.steps`` batches ``(images, targets, keys, shard names)`` for this rank and ``epoch``.

    Each pass builds a fresh pipeline with the epoch's seed, so a refill pass reads the same shards as the
    first one (never another rank's). The DataLoader's worker seeds come from (seed, epoch, rank, pass), not
    from the training process's generator, so what the training loop draws (dropout, mixup) never changes the
    workers' augmentations; a run resumed mid-epoch replays the epoch's first batches and then continues
    with exactly the ones it had not trained on. (With ``workers=0`` the augmentations draw from the
    training process's generators, which the trainer restores after the replay.)
    DataLoader workers ignore ``ignore_signals`` (the preemption signals the training process handles).
    """
    seed = epoch_seed(cfg.seed, epoch)
    rank = wds.utils.pytorch_worker_info()[0]
    yielded = 0
    passes = 0
    while True:
        pipeline = shard_pipeline(source, cfg, plan, seed, transform, errors)
        loader_seed = item_seed(
            cfg.seed, f"loader-epoch{epoch}-rank{rank}-pass{passes}", stream="pretrain-data"
        )
        passes += 1
        init = functools.partial(_ignore_in_worker, tuple(ignore_signals)) if ignore_signals else None
        loader = DataLoader(
            pipeline,
            batch_size=cfg.batch_size,
            num_workers=plan.workers,
            drop_last=True,
            pin_memory=pin_memory,
            persistent_workers=False,
            generator=torch.Generator().manual_seed(loader_seed),
            worker_init_fn=init,
        )
        produced = 0
        with _forking_workers(tuple(ignore_signals) if plan.workers else ()):
            batch_iter = iter(loader)
        while True:
            try:
                images, targets, keys, shards = next(batch_iter)
            except StopIteration:
                break
            except Exception as exc:  # a corrupt shard or sample under --on-error raise (any decoder's type)
                raise PretrainError(
                    f"reading the shards of epoch {epoch + 1} failed ({type(exc).__name__}: {exc}); check them "
                    "with `synth-shards verify`, or pass --on-error warn to skip corrupt samples"
                ) from exc
            produced += 1
            yield images, targets, list(keys), list(shards)
            yielded += 1
            if yielded == plan.steps:
                return
        if produced == 0:
            raise PretrainError(
                f"this rank's shards gave no full batch of {cfg.batch_size} samples; lower --batch-size or "
                "--workers, or write larger shards"
            )
