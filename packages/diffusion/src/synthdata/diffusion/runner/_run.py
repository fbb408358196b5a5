"""The generation loop: plan, resume, generate in mixed-prompt batches, write planned shards, describe."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from synthdata.diffusion.runner import _outdir
from synthdata.diffusion.runner._config import GenerateConfig
from synthdata.diffusion.runner._outdir import PLAN_FILE, PRODUCER
from synthdata.diffusion.runner._plan import (
    PLAN_ORDER,
    PlannedShard,
    Prompt,
    PromptLike,
    WorkItem,
    class_list,
    cut_shards,
    jsonable,
    normalise_prompts,
    plan_items,
    prompts_digest,
)
from synthdata.diffusion.runner._refs import Reference, load_references, scaled_start_step
from synthdata.diffusion.runner._summary import RunSummary, finish_rank, run_identity, start_rank
from synthdata.diffusion.runner.errors import GenerateError
from synthdata.shards import DatasetInfo, Sample, WorkSplit, storage, work_split, write_shard
from synthdata.shards.encoding import encode_image

log = logging.getLogger(__name__)

__all__ = ["PLAN_FILE", "PRODUCER", "Pipeline", "build_pipeline", "default_device", "run_generation"]


class Pipeline(Protocol):
    """What the runner needs of a text-to-image pipeline (``GlidePipeline`` fits)."""

    def generate(self, prompts: Sequence[str], seeds: Sequence[int], **kwargs: Any) -> torch.Tensor: ...

    def describe(self) -> dict[str, Any]: ...

    def model_digests(self) -> dict[str, str]: ...

    def diffusion(self, role: str, respacing: str) -> Any: ...


# ------------------------------------------------------------------------------------------ pipeline
def _local_rank() -> int:
    for var in ("LOCAL_RANK", "SLURM_LOCALID"):
        with contextlib.suppress(KeyError, ValueError):
            return int(os.environ[var])
    return 0


def default_device() -> str:
    """``cuda:LOCAL_RANK`` (modulo the visible devices) when CUDA is available, else ``cpu``."""
    if torch.cuda.is_available():
        return f"cuda:{_local_rank() % torch.cuda.device_count()}"
    return "cpu"


def build_pipeline(cfg: GenerateConfig, *, batch_size: int | None = None) -> Pipeline:
    """The GLIDE pipeline for ``cfg``: tiny random models with ``smoke``, else the official weights; with
    the fast sampler (:class:`synthdata.diffusion.fast.FastSampling`) when ``cfg.sampler`` asks for it or is
    ``auto`` on CUDA, else the exact one. ``batch_size`` (default ``cfg.batch_size``) is the fast sampler's
    fixed batch: the runner passes the largest batch its plan will ever form, so small runs are not padded
    up to ``--batch-size``."""
    from synthdata.diffusion.pipeline import GlidePipeline

    device = torch.device(cfg.device or default_device())
    dtype = getattr(torch, cfg.dtype) if cfg.dtype else None
    upsample = cfg.size == 256
    fast = cfg.sampler == "fast" or (cfg.sampler == "auto" and device.type == "cuda")
    log.info("sampler: %s (--sampler %s) on %s", "fast" if fast else "exact", cfg.sampler, device)
    sampler: Any = "exact"
    if fast:
        from synthdata.diffusion.fast import FastSampling

        sampler = FastSampling(batch_size or cfg.batch_size)
    if cfg.smoke:
        return GlidePipeline.smoke(upsample=upsample, device=device, dtype=dtype or torch.float32, sampler=sampler)
    return _pretrained(cfg, device, dtype, upsample, sampler)


def _pretrained(
    cfg: GenerateConfig, device: torch.device, dtype: torch.dtype | None, upsample: bool, sampler: Any
) -> Any:
    from synthdata.diffusion.checkpoints import CheckpointError
    from synthdata.diffusion.pipeline import GlidePipeline

    try:
        return GlidePipeline.pretrained(
            upsample=upsample,
            device=device,
            dtype=dtype,
            cache_dir=cfg.cache_dir,
            base_checkpoint=cfg.base_checkpoint,
            upsample_checkpoint=cfg.upsample_checkpoint,
            download=cfg.download,
            sampler=sampler,
        )
    except CheckpointError as exc:
        raise GenerateError(f"GLIDE weights: {exc} (or run with --smoke to check the install)") from exc


def _steps(pipe: Pipeline, role: str, respacing: str, flag: str) -> int:
    try:
        return int(pipe.diffusion(role, respacing).num_timesteps)
    except ValueError as exc:
        raise GenerateError(f"{flag} {respacing!r}: {exc}") from exc


# ------------------------------------------------------------------------------------------ the run
@dataclass(slots=True)
class _Job:
    cfg: GenerateConfig
    pipe: Pipeline
    refs: dict[int, list[Reference]]
    start_step: int | None
    paper_start_step: int | None
    base_steps: int
    up_steps: int | None
    digests: dict[str, str]

    def meta(self, item: WorkItem) -> dict[str, Any]:
        cfg, p = self.cfg, item.prompt
        meta: dict[str, Any] = {
            "class_index": p.class_index,
            "class_name": p.class_name,
            "prompt": p.prompt,
            "prompt_id": p.id,
            "replicate": item.replicate,
            "seed": item.seed,
            "size": cfg.size,
            "sampler": {"method": "ancestral", "respacing": cfg.base_respacing, "steps": self.base_steps},
            "guidance_scale": cfg.guidance,
            "upsampler": None,
            "upsample_temp": None,
            "models": self.digests,
            "smoke": cfg.smoke,
            "real_guidance": None,
        }
        if cfg.size == 256:
            meta["upsampler"] = {
                "method": "ddim",
                "eta": 0.0,
                "respacing": cfg.up_respacing,
                "steps": self.up_steps,
            }
            meta["upsample_temp"] = cfg.upsample_temp
        if item.shot is not None:
            ref = self.refs[p.class_index][item.shot]
            meta["real_guidance"] = {
                "source": ref.source,
                "sha256": ref.sha256,
                "shot": item.shot,
                "shots": cfg.shots,
                "preprocessing": cfg.reference_preprocessing,
                "start_step": self.start_step,
                "paper_start_step": self.paper_start_step,
            }
        return meta

    def generate(self, batch: Sequence[WorkItem]) -> torch.Tensor:
        cfg = self.cfg
        kwargs: dict[str, Any] = {}
        if cfg.real_guidance is not None:
            kwargs = {
                "real_guidance": [self.refs[it.prompt.class_index][it.shot].image for it in batch],  # type: ignore[index]
                "start_step": self.start_step,
            }
        images = self.pipe.generate(
            [it.prompt.prompt for it in batch],
            [it.seed for it in batch],
            size=cfg.size,
            guidance_scale=cfg.guidance,
            base_respacing=cfg.base_respacing,
            up_respacing=cfg.up_respacing,
            upsample_temp=cfg.upsample_temp,
            **kwargs,
        )
        expected = (len(batch), cfg.size, cfg.size, 3)
        if tuple(images.shape) != expected or images.dtype != torch.uint8:
            raise RuntimeError(
                f"pipeline returned {tuple(images.shape)} {images.dtype}, expected {expected} uint8"
            )
        return images


def _encode(images: torch.Tensor, fmt: str, quality: int | None, keys: list[str]) -> list[bytes]:
    arr = images.numpy()
    return [encode_image(arr[i], fmt, quality, key)[0] for i, key in enumerate(keys)]


def _write_planned_shard(
    job: _Job, out: str, shard: PlannedShard, pool: ThreadPoolExecutor, bar: Any
) -> None:
    """Generate a shard's items in batches (prompts mixed), encode them off the main thread, write it."""
    cfg = job.cfg
    encoded: list[Future[list[bytes]]] = []
    for start in range(0, len(shard.items), cfg.batch_size):
        batch = shard.items[start : start + cfg.batch_size]
        images = job.generate(batch)
        encoded.append(pool.submit(_encode, images, cfg.image_format, cfg.quality, [it.key for it in batch]))
        bar.update(len(batch))
    data = [b for f in encoded for b in f.result()]
    samples = (
        Sample(it.key, data[i], it.prompt.class_index, job.meta(it)) for i, it in enumerate(shard.items)
    )
    # A URL: written to a local temp folder, uploaded and checked, then its sidecar (write_shard).
    write_shard(storage.join(out, shard.name), samples, image_format=cfg.image_format, quality=cfg.quality)


def _progress(total: int, initial: int, split: WorkSplit, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=f"rank {split.rank}/{split.world_size}",
        unit="img",
        position=_local_rank() if split.world_size > 1 else None,
        disable=None if enabled else True,  # None: off when stderr is not a terminal
        dynamic_ncols=True,
    )


def run_generation(
    config: GenerateConfig,
    prompts: Iterable[PromptLike],
    *,
    classes: Sequence[str] | None = None,
    pipeline: Pipeline | None = None,
    split: WorkSplit | None = None,
    progress: bool = True,
    prompts_source: str = "prompts",
) -> RunSummary:
    """Generate this rank's share of the planned shards of ``prompts`` into ``config.out``.

    Complete shards are kept, incomplete ones redone; when every planned shard is complete (whichever rank
    finishes last sees it), ``dataset.json`` is written with the full config and model digests.
    """
    cfg = config.resolved()
    prompt_list: list[Prompt] = normalise_prompts(prompts, prompts_source)
    class_names = class_list(prompt_list, classes)
    out = cfg.out if storage.is_url(cfg.out) else str(storage.local_path(cfg.out))
    _outdir.check_location(out)
    if split is None:
        try:
            split = work_split()
        except ValueError as exc:
            raise GenerateError(str(exc)) from exc

    items = plan_items(prompt_list, images_per_prompt=cfg.images_per_prompt, seed=cfg.seed, shots=cfg.shots)
    shards = cut_shards(items, cfg.shard_size or 1, cfg.prefix)
    if pipeline is None:  # the fast sampler's fixed batch: the largest the plan forms, the same on every rank
        largest = max((len(s.items) for s in shards), default=1)
        pipeline = build_pipeline(cfg, batch_size=min(cfg.batch_size, largest))
    job = _make_job(cfg, pipeline, prompt_list, class_names)
    fingerprint, config_json = _describe_run(job, prompt_list, class_names, len(items), len(shards))
    existing = _outdir.read_info(out)  # dataset.json, read once: its producer, then whether it is stale
    _outdir.check_producer(out, existing[1])
    _outdir.prepare(out)  # only now: bad settings or references leave no directory behind
    _outdir.check_plan_file(out, fingerprint)
    _outdir.drop_stale_dataset_json(out, existing, len(items), fingerprint)

    mine = split.take(shards)
    complete, todo = _outdir.resume(out, mine)
    resumed_images = sum(len(s.items) for s in mine if s.name in complete)
    log.info(
        "rank %d/%d (%s): %d of %d shards are mine, %d complete, %d to do; %d images to generate on %s",
        split.rank, split.world_size, split.source, len(mine), len(shards), len(complete), len(todo),
        sum(len(s.items) for s in todo), describe_device(job.pipe),
    )  # fmt: skip

    identity = run_identity(fingerprint, len(items), len(shards), split.world_size)
    start_rank(out, split.rank, identity)
    started, t0 = time.time(), time.perf_counter()
    with _progress(sum(len(s.items) for s in mine), resumed_images, split, progress) as bar:
        generated = _write_shards(job, out, todo, bar)
    seconds = time.perf_counter() - t0

    done = _outdir.all_complete(out, shards)
    if done:
        info = DatasetInfo(
            classes=class_names, name=cfg.name or _outdir.dir_name(out), producer=PRODUCER, config=config_json
        )
        _outdir.finish_dataset(out, info, cfg.prefix, len(shards))
    summary = RunSummary(
        rank=split.rank,
        world_size=split.world_size,
        shards_planned=len(mine),
        shards_resumed=len(complete),
        shards_written=len(todo),
        images=generated,
        images_resumed=resumed_images,
        seconds=seconds,
        dataset_complete=done,
        out=out,
        started=started,
        finished=started + seconds,
    )
    merged = finish_rank(out, summary, identity)
    summary.run_summary = None if merged is None else str(merged)
    return summary


def _make_job(cfg: GenerateConfig, pipe: Pipeline, prompts: Sequence[Prompt], class_names: list[str]) -> _Job:
    """The run's settings with the pipeline: step counts (checked), Real Guidance references and k, digests."""
    base_steps = _steps(pipe, "base", cfg.base_respacing or "", "--base-respacing")
    up_steps = _steps(pipe, "upsample", cfg.up_respacing or "", "--up-respacing") if cfg.size == 256 else None
    refs: dict[int, list[Reference]] = {}
    start_step = paper_k = None
    if cfg.real_guidance is not None:
        from synthdata.diffusion.sampling import real_guidance_start_step

        assert cfg.shots is not None
        refs = load_references(
            cfg.real_guidance,
            class_names,
            cfg.shots,
            [p.class_index for p in prompts],
            preprocessing=cfg.reference_preprocessing,
        )
        paper_k = real_guidance_start_step(cfg.shots)
        start_step = scaled_start_step(paper_k, base_steps)
    digests = dict(pipe.model_digests())
    return _Job(cfg, pipe, refs, start_step, paper_k, base_steps, up_steps, digests)


def _describe_run(
    job: _Job, prompts: list[Prompt], class_names: list[str], n_items: int, n_shards: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fingerprint a resumed run must match, and the config ``dataset.json`` records."""
    cfg = job.cfg
    fingerprint = jsonable(
        cfg.image_settings()
        | {
            "prompts_sha256": prompts_digest(prompts),
            "classes": class_names,
            "models": job.digests,
            "references": {str(c): [r.sha256 for r in rs] for c, rs in sorted(job.refs.items())} or None,
            "plan_order": PLAN_ORDER,
        }
    )
    config_json = jsonable(
        {
            "settings": cfg.to_json() | {"out": None},
            "fingerprint": fingerprint,
            "items": n_items,
            "shards": n_shards,
            "real_guidance": None
            if job.start_step is None
            else {"shots": cfg.shots, "start_step": job.start_step, "paper_start_step": job.paper_start_step},
            "pipeline": job.pipe.describe(),
        }
    )
    return fingerprint, config_json


def _write_shards(job: _Job, out: str, todo: Sequence[PlannedShard], bar: Any) -> int:
    """Write the shards to do (images encoded on two threads); return how many images were generated."""
    generated = 0
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="encode") as pool:
        for shard in todo:
            _write_planned_shard(job, out, shard, pool, bar)
            generated += len(shard.items)
    return generated


def describe_device(pipe: Pipeline) -> str:
    d = pipe.describe()
    return f"{d.get('device', '?')} ({d.get('dtype', '?')})"
