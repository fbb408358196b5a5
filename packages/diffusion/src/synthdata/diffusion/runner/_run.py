"""The generation loop: plan, resume, generate in mixed-prompt batches, write planned shards, describe."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from synthdata.diffusion.runner._config import GenerateConfig
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
from synthdata.shards import (
    DATASET_JSON,
    DatasetInfo,
    DatasetInfoError,
    OutputDirError,
    Sample,
    WorkSplit,
    plan_resume,
    read_dataset_json,
    sidecar_path,
    work_split,
    write_dataset_json,
    write_shard,
)
from synthdata.shards.atomic import atomic_write_json
from synthdata.shards.encoding import encode_image

log = logging.getLogger(__name__)

PLAN_FILE = ".synth-generate.json"
PLAN_SCHEMA = "synthdata.generate-plan/1"
PRODUCER = "synth-generate"


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


# ------------------------------------------------------------------------------------------ files
def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"--out {out} exists and is not a directory; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputDirError(f"cannot create --out {out}: {exc.strerror}; choose a writable path") from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputDirError(f"--out {out} is not writable; fix its permissions or choose another directory")


def _diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new)):
            out += _diff(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [f"{prefix[:-1]}: {old!r} -> {new!r}"]


def check_plan_file(out: Path, fingerprint: dict[str, Any]) -> None:
    """Refuse to resume into a directory generated with other image settings; record them for next time."""
    path = out / PLAN_FILE
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("%s is unreadable; replacing it", path)
        else:
            changes = _diff(old, fingerprint)
            if changes:
                raise GenerateError(
                    f"--out {out} holds shards generated with other settings ({'; '.join(changes[:4])}); "
                    "rerun with the original settings to resume, or choose a new --out"
                )
            return
    atomic_write_json(path, {"schema": PLAN_SCHEMA, "producer": PRODUCER, "fingerprint": fingerprint})


def _sidecar(shard: Path) -> dict[str, Any] | None:
    try:
        obj = json.loads(sidecar_path(shard).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _remove_shard(shard: Path) -> None:
    for f in (sidecar_path(shard), shard):  # sidecar first: it is what marks completeness
        with contextlib.suppress(FileNotFoundError):
            f.unlink()


def _all_complete(out: Path, shards: Sequence[PlannedShard]) -> bool:
    """Every planned shard has its sidecar with the planned keys and a tar of the recorded size."""
    for s in shards:
        side = _sidecar(out / s.name)
        if side is None or side.get("keys") != s.keys:
            return False
        try:
            if (out / s.name).stat().st_size != side.get("bytes"):
                return False
        except FileNotFoundError:
            return False
    return True


def _prune_beyond(out: Path, prefix: str, n_shards: int) -> list[str]:
    """Remove shards of an earlier, larger plan (e.g. before ``--images-per-prompt`` was lowered)."""
    pattern = re.compile(rf"^{re.escape(prefix)}-000-(\d{{6,}})(\.tar|\.idx\.json)$")
    removed = []
    for p in sorted(out.iterdir(), key=lambda p: not p.name.endswith(".idx.json")):
        m = pattern.match(p.name)
        if m and int(m.group(1)) >= n_shards:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p.name)
    return removed


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
    job: _Job, out: Path, shard: PlannedShard, pool: ThreadPoolExecutor, bar: Any
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
    write_shard(out / shard.name, samples, image_format=cfg.image_format, quality=cfg.quality)


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
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"--out {out} exists and is not a directory; choose another --out")
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
    _prepare_out(out)  # only now: bad settings or references leave no directory behind
    fingerprint, config_json = _describe_run(job, prompt_list, class_names, len(items), len(shards))
    check_plan_file(out, fingerprint)
    _drop_stale_dataset_json(out, len(items), fingerprint)

    mine = split.take(shards)
    complete, todo = _resume(out, mine)
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

    done = _all_complete(out, shards)
    if done:
        _finish_dataset(out, cfg, class_names, config_json, len(shards))
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
        out=str(out),
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
        refs = load_references(cfg.real_guidance, class_names, cfg.shots, [p.class_index for p in prompts])
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


def _resume(out: Path, mine: Sequence[PlannedShard]) -> tuple[set[str], list[PlannedShard]]:
    """(names of this rank's complete shards, the shards to write); a complete shard from another plan
    (e.g. more images per prompt) is removed and redone."""
    complete = set(plan_resume(out, [s.name for s in mine]).complete)
    for s in mine:
        if s.name in complete and (_sidecar(out / s.name) or {}).get("keys") != s.keys:
            log.info("%s holds other keys than planned; redoing it", s.name)
            _remove_shard(out / s.name)
            complete.discard(s.name)
    return complete, [s for s in mine if s.name not in complete]


def _write_shards(job: _Job, out: Path, todo: Sequence[PlannedShard], bar: Any) -> int:
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


def _drop_stale_dataset_json(out: Path, n_items: int, fingerprint: dict[str, Any]) -> None:
    """A ``dataset.json`` describing another plan (fewer or more items) is removed while this one runs, so
    the directory never claims to be complete for the wrong plan."""
    if not (out / DATASET_JSON).exists():
        return
    try:
        info = read_dataset_json(out)
    except DatasetInfoError:
        info = None
    if info is not None and info.producer != PRODUCER:
        raise GenerateError(
            f"--out {out} holds a dataset made by {info.producer or 'another tool'}; choose a new --out"
        )
    if info is None or info.config.get("items") != n_items or info.config.get("fingerprint") != fingerprint:
        with contextlib.suppress(FileNotFoundError):
            (out / DATASET_JSON).unlink()


def _finish_dataset(
    out: Path, cfg: GenerateConfig, classes: list[str], config_json: dict[str, Any], n_shards: int
) -> None:
    removed = _prune_beyond(out, cfg.prefix, n_shards)
    if removed:
        log.info("removed %d files of an earlier, larger plan: %s", len(removed), ", ".join(removed[:4]))
    with contextlib.suppress(DatasetInfoError):
        old = read_dataset_json(out)
        if old.producer == PRODUCER and _same_run(old.config, config_json):
            return  # another rank (or an earlier run) already described this exact dataset
    write_dataset_json(
        out, DatasetInfo(classes=classes, name=cfg.name or out.name, producer=PRODUCER, config=config_json)
    )
    log.info("all %d shards complete; wrote %s", n_shards, out / DATASET_JSON)


def _same_run(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.get("fingerprint") == b.get("fingerprint") and a.get("items") == b.get("items")
