"""Pre-train a timm model on shards, one process per device under torchrun, with exact resume at epoch ends
and, with ``save_every_steps`` or on a preemption signal, at any optimizer update inside an epoch."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.data import Mixup
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3
from torch.nn.parallel import DistributedDataParallel

from synthdata.pretrain import _dist
from synthdata.pretrain._metrics import MetricsLog, write_json_atomic
from synthdata.pretrain._models import (
    amp_dtype,
    check_model_name,
    create_model,
    data_config,
    train_criterion,
    train_transform,
)
from synthdata.pretrain._preempt import PreemptionWatch, SignalHook
from synthdata.pretrain.checkpoint import (
    FORMAT,
    LAST,
    capture_rng,
    load_checkpoint,
    remove_stale_temps,
    restore_rng,
    save_checkpoint,
    save_in_epoch_checkpoint,
)
from synthdata.pretrain.config import PretrainError, TrainConfig, parse_signals
from synthdata.pretrain.data import SkipCounter, epoch_batches, plan_epochs, resolve_source
from synthdata.shards import item_seed

log = logging.getLogger(__name__)

# Settings a resumed run must share with its checkpoint (anything else may change between invocations).
RESUME_MUST_MATCH = ("model", "img_size", "num_classes")
# Settings that shape the learning-rate schedule; when they change on resume the schedule is rebuilt.
SCHEDULE_KEYS = ("epochs", "sched", "lr", "warmup_epochs", "min_lr")
# Test hook: with this set to N, rank 0 SIGKILLs itself right after optimizer update N (after any checkpoint
# due at N), so a test can crash a run at a known point inside an epoch, without an epoch checkpoint.
KILL_AFTER_ENV = "SYNTHDATA_PRETRAIN_KILL_AFTER_UPDATES"


def _kill_after_updates() -> int | None:
    value = os.environ.get(KILL_AFTER_ENV, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise PretrainError(f"{KILL_AFTER_ENV}={value!r} is not an integer; unset it") from None


def _crash() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _data_layout(cfg: TrainConfig, plan_steps: int, workers: int, world_size: int, shards: int) -> dict:
    """The settings that decide which batches each rank sees within an epoch, and in which order."""
    return {
        "world_size": world_size,
        "workers": workers,
        "batch_size": cfg.batch_size,
        "accum_steps": cfg.accum_steps,
        "steps_per_epoch": plan_steps,
        "seed": cfg.seed,
        "shuffle": cfg.shuffle,
        "resampled": cfg.resampled,
        "shards": shards,
    }


@dataclass(slots=True)
class _EpochSums:
    """One rank's running sums for the epoch in progress; saved in in-epoch checkpoints, so a resumed epoch
    reports the same loss as an uninterrupted one."""

    loss_sum: torch.Tensor
    loss_n: int
    window_sum: torch.Tensor
    window_n: int
    keys_digest: bytes
    """SHA-256 chained over the sample keys of every micro-batch consumed so far."""

    @classmethod
    def fresh(cls, device: torch.device) -> _EpochSums:
        zero = torch.zeros((), dtype=torch.float64, device=device)
        return cls(zero, 0, zero.clone(), 0, b"")

    def add_keys(self, keys: list[str]) -> None:
        self.keys_digest = hashlib.sha256(self.keys_digest + "\n".join(keys).encode()).digest()

    def to_saved(self) -> dict[str, Any]:
        return {
            "loss_sum": self.loss_sum.item(),
            "loss_n": self.loss_n,
            "window_sum": self.window_sum.item(),
            "window_n": self.window_n,
            "keys_sha256": self.keys_digest.hex(),
        }

    def load(self, saved: dict[str, Any]) -> None:
        """Take the saved sums (float64 values round-trip exactly); the keys digest stays the replayed one."""
        self.loss_sum.fill_(float(saved["loss_sum"]))
        self.loss_n = int(saved["loss_n"])
        self.window_sum.fill_(float(saved["window_sum"]))
        self.window_n = int(saved["window_n"])


@dataclass(frozen=True, slots=True)
class _ResumePoint:
    """Where in its first epoch a resumed run starts."""

    micro_batches: int = 0
    """Micro-batches of the epoch already trained on (replayed and dropped before training goes on)."""
    sums: dict[str, Any] | None = None
    exact: bool = True
    """Same data layout as the checkpoint: the replayed batches are the trained ones, RNG states restored."""


def _resume_point(
    ckpt: dict[str, Any] | None, layout: dict, cfg: TrainConfig, steps: int, info: _dist.DistInfo
) -> _ResumePoint:
    pos = ckpt.get("in_epoch") if ckpt is not None else None
    if not pos:
        return _ResumePoint()
    if pos.get("layout") == layout:
        return _ResumePoint(int(pos["micro_batches"]), pos["ranks"][info.rank], True)
    # Another data layout (ranks, workers, batch...): go on at the same share of the epoch. The replayed
    # batches are not the ones trained on, so some samples are seen twice this epoch and others not at all.
    saved = pos.get("layout") or {}
    consumed = int(pos["micro_batches"]) * int(saved.get("batch_size", 0)) * int(saved.get("world_size", 0))
    skip = min(consumed // (cfg.batch_size * info.world_size), steps) // cfg.accum_steps * cfg.accum_steps
    sums = None
    if info.is_main:
        changed = sorted(k for k in layout if saved.get(k) != layout[k])
        log.warning(
            "the checkpoint was taken inside epoch %d with another data layout (changed: %s): training goes "
            "on after micro-batch %d of %d (the same share of the epoch), which is not bit-identical to an "
            "uninterrupted run",
            int(pos["epoch"]) + 1,
            ", ".join(changed),
            skip,
            steps,
        )
        ranks = pos.get("ranks") or []
        sums = {
            "loss_sum": sum(float(r["loss_sum"]) for r in ranks),
            "loss_n": sum(int(r["loss_n"]) for r in ranks),
            "window_sum": 0.0,
            "window_n": 0,
        }
    return _ResumePoint(skip, sums, False)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def _check_resume(ckpt: dict[str, Any], cfg: TrainConfig, num_classes: int, path: Path) -> None:
    saved = dict(ckpt.get("config", {}))
    saved["num_classes"] = ckpt.get("num_classes")
    now = {"model": cfg.model, "img_size": cfg.img_size, "num_classes": num_classes}
    diffs = [
        f"{k}: checkpoint {saved.get(k)!r}, now {now[k]!r}"
        for k in RESUME_MUST_MATCH
        if saved.get(k) != now[k]
    ]
    if diffs:
        what = "classes mismatch" if saved.get("num_classes") != num_classes else "settings mismatch"
        raise PretrainError(
            f"{what}: {path} was trained with different settings ({'; '.join(diffs)}); use a fresh --out "
            "or the original settings"
        )


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run (or resume) pre-training; returns the summary that ends ``metrics.jsonl``.

    Under torchrun each process trains one replica (DDP); without it, a single process. Rank 0 writes
    ``config.json``, ``metrics.jsonl`` and ``checkpoints/``; every rank reads ``checkpoints/last.pt`` to
    resume, so multi-node runs need ``--out`` on a shared file system. On a signal in
    ``cfg.preempt_signals`` (a scheduler's preemption notice) every rank saves at the next optimizer update
    and the run stops: the summary's ``preempted`` names the signal (``synth-pretrain`` then exits with
    ``cfg.preempt_exit_code``), and after that stop the process ignores those signals while it winds down.
    """
    cfg.validate()
    check_model_name(cfg.model)
    info = _dist.init_distributed(cfg.device)
    try:
        with PreemptionWatch(parse_signals(cfg.preempt_signals), info) as preempt:
            return _train(cfg, info, preempt)
    finally:
        _dist.shutdown()


def _train(cfg: TrainConfig, info: _dist.DistInfo, preempt: PreemptionWatch) -> dict[str, Any]:
    out = cfg.out_dir
    ckpt_dir = out / "checkpoints"
    source = resolve_source(cfg.data, cfg.num_classes)
    plan = plan_epochs(source, cfg, info.world_size)
    layout = _data_layout(cfg, plan.steps, plan.workers, info.world_size, len(source.urls))
    kill_after = _kill_after_updates()
    signal_hook = SignalHook.from_env()
    if info.is_main:
        try:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PretrainError(f"cannot create --out {out}: {exc.strerror}") from exc
        for path in remove_stale_temps(ckpt_dir):
            log.info("removed %s, left by a save that was killed before it finished", path)
    _dist.barrier(info)

    last = ckpt_dir / LAST
    ckpt: dict[str, Any] | None = None
    if last.exists():
        if not cfg.resume:
            raise PretrainError(
                f"{last} exists and --no-resume was given; choose a fresh --out or drop --no-resume"
            )
        ckpt = load_checkpoint(last)
        _check_resume(ckpt, cfg, source.num_classes, last)

    _seed_all(cfg.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    model = create_model(cfg.model, source.num_classes, cfg.img_size, cfg.drop_path)
    dcfg = data_config(model, cfg.img_size)
    model.to(info.device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = create_optimizer_v2(
        model, opt=cfg.opt, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum
    )
    updates_per_epoch = plan.steps // cfg.accum_steps
    scheduler, _ = create_scheduler_v2(
        optimizer,
        sched=cfg.sched,
        num_epochs=cfg.epochs,
        warmup_epochs=cfg.warmup_epochs,
        min_lr=cfg.min_lr,
        step_on_epochs=False,
        updates_per_epoch=updates_per_epoch,
    )
    ema = ModelEmaV3(model, decay=cfg.ema_decay) if cfg.ema else None
    dtype = amp_dtype(cfg.amp_dtype)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None

    start_epoch, global_update = 0, 0
    resume = _resume_point(ckpt, layout, cfg, plan.steps, info)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ema is not None:
            if ckpt.get("ema") is not None:
                ema.load_state_dict(ckpt["ema"])
            else:
                ema.set(model)
        if scaler is not None and ckpt.get("scaler") is not None:
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch, global_update = int(ckpt["epoch"]), int(ckpt["global_update"])
        saved = ckpt.get("config", {})
        saved_upe = ckpt.get("updates_per_epoch", global_update // max(start_epoch, 1))
        changed = [k for k in SCHEDULE_KEYS if saved.get(k) != getattr(cfg, k)]
        if saved_upe != updates_per_epoch:
            changed.append("updates per epoch (batch, ranks or accumulation)")
        if changed or not resume.exact:
            # timm's schedulers are functions of the update count: count from where this run's layout resumes
            global_update = start_epoch * updates_per_epoch + resume.micro_batches // cfg.accum_steps
        if changed:
            # restart the schedule from the new settings at this epoch rather than keep one sized for the old
            # run (e.g. after raising --epochs)
            if info.is_main:
                log.warning(
                    "the learning-rate schedule follows the new settings from epoch %d (changed: %s)",
                    start_epoch + 1,
                    ", ".join(changed),
                )
        else:
            scheduler.load_state_dict(ckpt["scheduler"])
        scheduler.step_update(num_updates=global_update)

    raw_model = model
    if info.distributed:
        model = DistributedDataParallel(
            model, device_ids=[info.device.index] if info.device.type == "cuda" else None
        )
    ddp_model = model
    if cfg.compile:
        model = torch.compile(model)

    # Generator states: restored per rank from the checkpoint (bit-exact resume), else seeded per rank.
    rng_states = ckpt.get("rng") if ckpt is not None else None
    if isinstance(rng_states, list) and len(rng_states) == info.world_size:
        restore_rng(rng_states[info.rank], info.device)
    else:
        if ckpt is not None:
            log.warning(
                "checkpoint was written by %s ranks, this run has %d: generator states are reseeded, so "
                "the resumed run is not bit-identical to an uninterrupted one",
                len(rng_states) if isinstance(rng_states, list) else "?",
                info.world_size,
            )
        _seed_all(item_seed(cfg.seed, f"rank-{info.rank}-epoch-{start_epoch}", stream="pretrain-train"))
    saved_workers = ckpt.get("data_workers") if ckpt is not None else None
    if saved_workers is not None and saved_workers != plan.workers and info.is_main:
        log.warning(
            "checkpoint was written with %d DataLoader workers per rank, this run uses %d: the sample order "
            "differs, so the resumed run is not bit-identical to an uninterrupted one",
            saved_workers,
            plan.workers,
        )

    mixup_fn = None
    if cfg.mixup > 0 or cfg.cutmix > 0:
        mixup_fn = Mixup(
            mixup_alpha=cfg.mixup,
            cutmix_alpha=cfg.cutmix,
            prob=cfg.mixup_prob,
            label_smoothing=cfg.smoothing,
            num_classes=source.num_classes,
        )
    criterion = train_criterion(cfg.smoothing, mixup_fn is not None).to(info.device)
    transform = train_transform(
        dcfg, auto_augment=cfg.auto_augment, color_jitter=cfg.color_jitter, reprob=cfg.reprob
    )
    errors = SkipCounter()
    metrics = MetricsLog(out / "metrics.jsonl", info.is_main)
    run_config = {**cfg.to_dict(), "num_classes": source.num_classes}
    if info.is_main:
        write_json_atomic(
            out / "config.json",
            {
                **run_config,
                "world_size": info.world_size,
                "steps_per_epoch": plan.steps,
                "updates_per_epoch": updates_per_epoch,
                "epoch_samples": plan.epoch_samples,
                "global_batch": cfg.batch_size * info.world_size * cfg.accum_steps,
                "data_config": dcfg,
                "classes": source.classes,
                "shards": len(source.urls),
            },
        )
    stop_epoch = cfg.epochs
    if cfg.stop_after_epochs is not None:
        stop_epoch = min(stop_epoch, start_epoch + cfg.stop_after_epochs)
    metrics.write(
        "start",
        start_epoch=start_epoch + 1,
        completed_epochs=start_epoch,
        resumed=ckpt is not None,
        resumed_at_micro_batch=resume.micro_batches,
        resumed_at_update=global_update,
        epochs=cfg.epochs,
        world_size=info.world_size,
        steps_per_epoch=plan.steps,
        global_batch=cfg.batch_size * info.world_size * cfg.accum_steps,
        workers=plan.workers,
        model=cfg.model,
        device=str(info.device.type),
        amp=cfg.amp_dtype,
    )
    if info.is_main:
        log.info(
            "%s %s from %s: epochs %d..%d of %d%s, %d steps/epoch on each of %d ranks (batch %d, accum %d)",
            "resuming" if ckpt is not None else "training",
            cfg.model,
            cfg.data,
            start_epoch + 1,
            stop_epoch,
            cfg.epochs,
            f" (epoch {start_epoch + 1} after micro-batch {resume.micro_batches})"
            if resume.micro_batches
            else "",
            plan.steps,
            info.world_size,
            cfg.batch_size,
            cfg.accum_steps,
        )
    del ckpt

    autocast = (
        (lambda: torch.autocast(device_type=info.device.type, dtype=dtype))
        if dtype is not None
        else contextlib.nullcontext
    )
    pin = info.device.type == "cuda"

    def checkpoint(epochs_done: int, rng: list[Any], in_epoch: Any, record: Any) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "epoch": epochs_done,
            "global_update": global_update,
            "model": raw_model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": rng,
            "config": run_config,
            "num_classes": source.num_classes,
            "classes": source.classes,
            "data_config": dcfg,
            "world_size": info.world_size,
            "data_workers": plan.workers,
            "updates_per_epoch": updates_per_epoch,
            "metrics": record,
            "in_epoch": in_epoch,
        }

    def save_in_epoch(epoch: int, micro_batches: int, sums: _EpochSums) -> None:
        """Checkpoint right after an optimizer update inside an epoch (a collective: every rank calls it)."""
        gathered = _dist.all_gather_objects({"rng": capture_rng(info.device), "sums": sums.to_saved()}, info)
        if info.is_main:
            in_epoch = {
                "epoch": epoch,
                "micro_batches": micro_batches,
                "updates": micro_batches // cfg.accum_steps,
                "layout": layout,
                "ranks": [g["sums"] for g in gathered],
            }
            save_in_epoch_checkpoint(
                checkpoint(epoch, [g["rng"] for g in gathered], in_epoch, None), ckpt_dir
            )
            metrics.write("checkpoint", epoch=epoch + 1, step=global_update, micro_batches=micro_batches)

    def stop_for(signum: int, epoch: int, micro_batches: int | None) -> str:
        """Log and record a stop on a preemption signal (a collective: every rank calls it, once)."""
        name = signal.Signals(signum).name
        ranks = preempt.receivers()
        where = (
            f"inside epoch {epoch + 1} after micro-batch {micro_batches} of {plan.steps}"
            if micro_batches is not None
            else f"at the end of epoch {epoch + 1}"
        )
        if info.is_main:
            log.warning(
                "%s reached rank %s of %d: checkpoint %s saved at update %d (%s); stopping, rerun the same "
                "command to resume",
                name,
                ",".join(map(str, ranks)) or "?",
                info.world_size,
                last,
                global_update,
                where,
            )
        metrics.write(
            "preempted",
            signal=name,
            ranks=ranks,
            epoch=epoch + 1,
            step=global_update,
            micro_batches=micro_batches,
        )
        return name

    epoch_records: list[dict[str, Any]] = []
    run_start = time.perf_counter()
    completed = start_epoch
    preempted: str | None = None
    ignore = preempt.installed
    for epoch in range(start_epoch, stop_epoch):
        model.train()
        skipped_before = errors.count
        batches = epoch_batches(
            source, cfg, plan, epoch, transform, pin_memory=pin, errors=errors, ignore_signals=ignore
        )
        sums = _EpochSums.fresh(info.device)
        keys_seen: list[str] = []
        shards_seen: set[str] = set()
        first, replay_s = 0, 0.0
        if epoch == start_epoch and resume.micro_batches:
            # Replay the batches this epoch already trained on: read, decoded and augmented, then dropped
            # (the workers' generators must advance exactly as they did), no forward or backward pass.
            first = resume.micro_batches
            tr = time.perf_counter()
            for _ in range(first):
                _, _, keys, shards = next(batches)
                shards_seen.update(shards)
                sums.add_keys(keys)
                if cfg.log_keys:
                    keys_seen.extend(keys)
            if resume.sums is not None:
                saved_keys = resume.sums.get("keys_sha256")
                if resume.exact and saved_keys and saved_keys != sums.keys_digest.hex():
                    log.warning(
                        "rank %d: the %d replayed micro-batches of epoch %d hold other samples than the ones "
                        "trained on before the checkpoint (did the shards under --data change?); the run "
                        "goes on but is not bit-identical to an uninterrupted one",
                        info.rank,
                        first,
                        epoch + 1,
                    )
                sums.load(resume.sums)
            if resume.exact:
                # the generator states of the moment the checkpoint was taken (the replay drew from them)
                restore_rng(rng_states[info.rank], info.device)
            replay_s = time.perf_counter() - tr
            if info.is_main:
                log.info(
                    "epoch %d: replayed its first %d of %d micro-batches in %.1f s; training goes on from there",
                    epoch + 1,
                    first,
                    plan.steps,
                    replay_s,
                )
        wait = 0.0
        t0 = time.perf_counter()
        for step in range(first, plan.steps):
            tw = time.perf_counter()
            images, targets, keys, shards = next(batches)
            wait += time.perf_counter() - tw
            shards_seen.update(shards)
            sums.add_keys(keys)
            if cfg.log_keys:
                keys_seen.extend(keys)
            images = images.to(info.device, non_blocking=True)
            targets = targets.to(info.device, non_blocking=True)
            if cfg.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            if mixup_fn is not None:
                images, targets = mixup_fn(images, targets)
            update = (step + 1) % cfg.accum_steps == 0
            sync = ddp_model.no_sync() if info.distributed and not update else contextlib.nullcontext()
            with sync:
                with autocast():
                    loss = criterion(model(images), targets)
                scaled = loss / cfg.accum_steps
                (scaler.scale(scaled) if scaler is not None else scaled).backward()
            sums.loss_sum += loss.detach().double()
            sums.loss_n += 1
            sums.window_sum += loss.detach().double()
            sums.window_n += 1
            if not update:
                continue
            if cfg.clip_grad is not None:
                if scaler is not None:
                    scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(raw_model.parameters(), cfg.clip_grad)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            global_update += 1
            scheduler.step_update(num_updates=global_update)
            if ema is not None:
                ema.update(raw_model, step=global_update)
            if cfg.log_every and global_update % cfg.log_every == 0:
                total, n = _dist.all_reduce_sum([sums.window_sum.item(), float(sums.window_n)], info)
                metrics.write(
                    "step",
                    epoch=epoch + 1,
                    step=global_update,
                    train_loss=total / max(n, 1),
                    lr=optimizer.param_groups[0]["lr"],
                )
                sums.window_sum.zero_()
                sums.window_n = 0
            if signal_hook is not None:
                signal_hook.fire(global_update, info.rank)
            # Never at the epoch's last update: the epoch checkpoint below covers it (and the preemption
            # check after it). Every rank decides alike (an update count, a reduced flag), so all of them
            # join the save's gather.
            signum = 0
            if step + 1 < plan.steps:
                signum = preempt.agreed()
                if signum or (cfg.save_every_steps and global_update % cfg.save_every_steps == 0):
                    save_in_epoch(epoch, step + 1, sums)
            if kill_after is not None and global_update == kill_after and info.is_main:
                _crash()
            if signum:
                preempted = stop_for(signum, epoch, step + 1)
                break
        batches.close()
        if preempted is not None:
            break
        if info.device.type == "cuda":
            torch.cuda.synchronize(info.device)
        elapsed = max(time.perf_counter() - t0, 1e-9)
        samples = plan.steps * cfg.batch_size
        trained = (plan.steps - first) * cfg.batch_size  # this invocation's part of the epoch
        loss_total, steps_total, rate_total, share_total = _dist.all_reduce_sum(
            [sums.loss_sum.item(), float(sums.loss_n), trained / elapsed, wait / elapsed], info
        )
        (share_max,) = _dist.all_reduce_max([wait / elapsed], info)
        (skipped,) = _dist.all_reduce_sum([float(errors.count - skipped_before)], info)
        rank_shards = _dist.all_gather_objects(sorted(shards_seen), info)
        readers: dict[str, int] = {}
        for names in rank_shards:
            for name in names:
                readers[name] = readers.get(name, 0) + 1
        record = {
            "epoch": epoch + 1,
            "step": global_update,
            "train_loss": loss_total / steps_total if steps_total else float("nan"),
            "lr": optimizer.param_groups[0]["lr"],
            "images_per_s_per_gpu": rate_total / info.world_size,
            "images_per_s": rate_total,
            "data_wait_share": share_total / info.world_size,
            "data_wait_share_max": share_max,
            "epoch_time_s": elapsed,
            "samples": samples * info.world_size,
            "skipped_samples": int(skipped),
            # read-once mode splits shards between ranks, so no shard should be read by two ranks
            "shards_per_rank": [len(names) for names in rank_shards],
            "shards_read_by_several_ranks": sum(1 for n in readers.values() if n > 1),
        }
        if first:
            record["resumed_at_micro_batch"] = first
            record["replay_s"] = replay_s
        epoch_records.append(record)
        metrics.write("epoch", **record)
        if cfg.log_keys:
            keys_dir = out / "keys"
            keys_dir.mkdir(parents=True, exist_ok=True)
            (keys_dir / f"epoch{epoch + 1:03d}-rank{info.rank:03d}.txt").write_text(
                "".join(k + "\n" for k in keys_seen), encoding="utf-8"
            )
            if info.is_main:
                write_json_atomic(
                    keys_dir / f"epoch{epoch + 1:03d}-shards.json",
                    {f"rank{r:03d}": names for r, names in enumerate(rank_shards)},
                )
        rng = _dist.all_gather_objects(capture_rng(info.device), info)
        if info.is_main:
            save_checkpoint(
                checkpoint(epoch + 1, rng, None, record), ckpt_dir, epoch + 1, cfg.keep_checkpoints
            )
            log.info(
                "epoch %d/%d: loss %.4f, lr %.3g, %.1f images/s/%s, data wait %.0f%%",
                epoch + 1,
                cfg.epochs,
                record["train_loss"],
                record["lr"],
                record["images_per_s_per_gpu"],
                "GPU" if info.device.type == "cuda" else "process",
                100 * record["data_wait_share"],
            )
        _dist.barrier(info)
        completed = epoch + 1
        # a signal that came during the epoch's last update or its checkpoint: that checkpoint serves
        if epoch + 1 < stop_epoch and (signum := preempt.agreed()):
            preempted = stop_for(signum, epoch, None)
            break

    summary = {
        "completed_epochs": completed,
        "epochs": cfg.epochs,
        "finished": completed >= cfg.epochs,
        "preempted": preempted,
        "preempted_at_update": global_update if preempted else None,
        "epochs_this_run": len(epoch_records),
        "final_train_loss": epoch_records[-1]["train_loss"] if epoch_records else None,
        "images_per_s_per_gpu": (
            sum(r["images_per_s_per_gpu"] for r in epoch_records) / len(epoch_records)
            if epoch_records
            else None
        ),
        "data_wait_share": (
            sum(r["data_wait_share"] for r in epoch_records) / len(epoch_records) if epoch_records else None
        ),
        "run_time_s": time.perf_counter() - run_start,
        "world_size": info.world_size,
        "checkpoint": str(last),
    }
    if not epoch_records and preempted is None and info.is_main:
        log.info("%s already holds all %d epochs; nothing to do", last, cfg.epochs)
    metrics.write("summary", **summary)
    return summary
