"""One rank's pre-training run: set up (or resume), train micro-batch by micro-batch, end each epoch.

Checkpoints (what is saved, what a resume restores) belong to :class:`Checkpointer`; the preemption signals
to :class:`PreemptionWatch`, which the trainer asks at each optimizer update (:meth:`Trainer._after_update`)
and after each epoch (:meth:`Trainer.fit`), and stops through :meth:`Trainer._stop`.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import time
from typing import Any

import torch
from timm.data import Mixup
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3
from torch.nn.parallel import DistributedDataParallel

from synthdata.pretrain import _dist
from synthdata.pretrain._checkpointer import Checkpointer, TrainState, seed_all
from synthdata.pretrain._epoch import EpochProgress, EpochSums
from synthdata.pretrain._metrics import MetricsLog, write_json_atomic
from synthdata.pretrain._models import (
    amp_dtype,
    autocast,
    create_model,
    data_config,
    train_criterion,
    train_transform,
)
from synthdata.pretrain._preempt import PreemptionWatch, SignalHook
from synthdata.pretrain.config import PretrainError, TrainConfig
from synthdata.pretrain.data import Batch, SkipCounter, epoch_batches, plan_epochs, resolve_source

log = logging.getLogger(__name__)

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


def data_layout(cfg: TrainConfig, plan_steps: int, workers: int, world_size: int, shards: int) -> dict:
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


def _mixup(cfg: TrainConfig, num_classes: int) -> Mixup | None:
    if cfg.mixup <= 0 and cfg.cutmix <= 0:
        return None
    return Mixup(
        mixup_alpha=cfg.mixup,
        cutmix_alpha=cfg.cutmix,
        prob=cfg.mixup_prob,
        label_smoothing=cfg.smoothing,
        num_classes=num_classes,
    )


class Trainer:
    """Pre-training on this rank: the constructor sets the run up (resuming from ``last.pt`` when there is
    one), :meth:`fit` trains the epochs this invocation runs and returns the summary."""

    def __init__(self, cfg: TrainConfig, info: _dist.DistInfo, preempt: PreemptionWatch) -> None:
        self.cfg, self.info, self.preempt = cfg, info, preempt
        self.out = cfg.out_dir
        self.source = resolve_source(cfg.data, cfg.num_classes)
        self.plan = plan_epochs(self.source, cfg, info.world_size)
        self.updates_per_epoch = self.plan.steps // cfg.accum_steps
        self.kill_after = _kill_after_updates()
        self.signal_hook = SignalHook.from_env()
        layout = data_layout(cfg, self.plan.steps, self.plan.workers, info.world_size, len(self.source.urls))
        self.checkpointer = Checkpointer(self.out / "checkpoints", info, layout)
        self.checkpointer.prepare()
        self.checkpointer.load(cfg, self.source.num_classes)

        seed_all(cfg.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
        self.amp = amp_dtype(cfg.amp_dtype)
        self.state, self.data_config = self._build()
        self.start_epoch = self.checkpointer.restore(
            self.state, cfg, self.plan.steps, self.updates_per_epoch
        )
        self.model: Any = self.state.model
        self._ddp: DistributedDataParallel | None = None
        self._wrap()
        self.checkpointer.restore_generators(cfg.seed, self.start_epoch, self.plan.workers)

        self.mixup = _mixup(cfg, self.source.num_classes)
        self.criterion = train_criterion(cfg.smoothing, self.mixup is not None).to(info.device)
        self.transform = train_transform(
            self.data_config, auto_augment=cfg.auto_augment, color_jitter=cfg.color_jitter, reprob=cfg.reprob
        )
        self.errors = SkipCounter()
        self.metrics = MetricsLog(self.out / "metrics.jsonl", info.is_main)
        self._describe_run()
        self.stop_epoch = cfg.epochs
        if cfg.stop_after_epochs is not None:
            self.stop_epoch = min(self.stop_epoch, self.start_epoch + cfg.stop_after_epochs)
        self._announce()

        self.epoch = EpochProgress(self.start_epoch, EpochSums.fresh(info.device), cfg.log_keys)
        """The epoch in progress (replaced at each epoch's start)."""
        self.records: list[dict[str, Any]] = []
        self.completed = self.start_epoch
        self.preempted: str | None = None

    # set-up

    def _build(self) -> tuple[TrainState, dict[str, Any]]:
        """The model, optimizer, scheduler, EMA and loss scaler of a fresh run, and the model's data config."""
        cfg = self.cfg
        model = create_model(cfg.model, self.source.num_classes, cfg.img_size, cfg.drop_path)
        dcfg = data_config(model, cfg.img_size)
        model.to(self.info.device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        optimizer = create_optimizer_v2(
            model, opt=cfg.opt, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum
        )
        scheduler, _ = create_scheduler_v2(
            optimizer,
            sched=cfg.sched,
            num_epochs=cfg.epochs,
            warmup_epochs=cfg.warmup_epochs,
            min_lr=cfg.min_lr,
            step_on_epochs=False,
            updates_per_epoch=self.updates_per_epoch,
        )
        ema = ModelEmaV3(model, decay=cfg.ema_decay) if cfg.ema else None
        scaler = torch.amp.GradScaler("cuda") if self.amp == torch.float16 else None
        return TrainState(model, optimizer, scheduler, ema, scaler), dcfg

    def _wrap(self) -> None:
        """DDP across ranks, then torch.compile, around the plain model (which the checkpoints save)."""
        device = self.info.device
        if self.info.distributed:
            self._ddp = DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None
            )
            self.model = self._ddp
        if self.cfg.compile:
            self.model = torch.compile(self.model)

    def _describe_run(self) -> None:
        """Write ``config.json`` (rank 0) and tell the checkpointer what the saves describe the run with."""
        cfg, info, plan, source = self.cfg, self.info, self.plan, self.source
        run_config = {**cfg.to_dict(), "num_classes": source.num_classes}
        if info.is_main:
            write_json_atomic(
                self.out / "config.json",
                {
                    **run_config,
                    "world_size": info.world_size,
                    "steps_per_epoch": plan.steps,
                    "updates_per_epoch": self.updates_per_epoch,
                    "epoch_samples": plan.epoch_samples,
                    "global_batch": cfg.batch_size * info.world_size * cfg.accum_steps,
                    "data_config": self.data_config,
                    "classes": source.classes,
                    "shards": len(source.urls),
                },
            )
        self.checkpointer.bind(
            self.state,
            {
                "config": run_config,
                "num_classes": source.num_classes,
                "classes": source.classes,
                "data_config": self.data_config,
                "world_size": info.world_size,
                "data_workers": plan.workers,
                "updates_per_epoch": self.updates_per_epoch,
            },
        )

    def _announce(self) -> None:
        """The ``start`` metrics line and the log line that say what this invocation trains."""
        cfg, info, plan = self.cfg, self.info, self.plan
        resumed_at = self.checkpointer.resume.micro_batches
        self.metrics.write(
            "start",
            start_epoch=self.start_epoch + 1,
            completed_epochs=self.start_epoch,
            resumed=self.checkpointer.resumed,
            resumed_at_micro_batch=resumed_at,
            resumed_at_update=self.state.global_update,
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
                "resuming" if self.checkpointer.resumed else "training",
                cfg.model,
                cfg.data,
                self.start_epoch + 1,
                self.stop_epoch,
                cfg.epochs,
                f" (epoch {self.start_epoch + 1} after micro-batch {resumed_at})" if resumed_at else "",
                plan.steps,
                info.world_size,
                cfg.batch_size,
                cfg.accum_steps,
            )

    # training

    def fit(self) -> dict[str, Any]:
        """Train from the resume point to ``stop_epoch`` (or a preemption stop); returns the summary."""
        run_start = time.perf_counter()
        for index in range(self.start_epoch, self.stop_epoch):
            if self._run_epoch(index):
                break
            self.end_epoch()
            # a signal that came during the epoch's last update or its checkpoint: that checkpoint serves
            if index + 1 < self.stop_epoch and (signum := self.preempt.agreed()):
                self._stop(signum, None)
                break
        return self._summary(run_start)

    def _run_epoch(self, index: int) -> bool:
        """Train epoch ``index`` (0-based) up to its last micro-batch; True if a preemption stopped it."""
        self.model.train()
        self.epoch = EpochProgress(
            index, EpochSums.fresh(self.info.device), self.cfg.log_keys, skipped_before=self.errors.count
        )
        batches = epoch_batches(
            self.source,
            self.cfg,
            self.plan,
            index,
            self.transform,
            pin_memory=self.info.device.type == "cuda",
            errors=self.errors,
            ignore_signals=self.preempt.installed,
        )
        try:
            if index == self.start_epoch and self.checkpointer.resume.micro_batches:
                self._replay(batches)
            self.epoch.started = time.perf_counter()
            while self.epoch.micro_batches < self.plan.steps:
                waited = time.perf_counter()
                batch = next(batches)
                self.epoch.wait_s += time.perf_counter() - waited
                if self.train_step(batch) and self._after_update():
                    return True
            return False
        finally:
            batches.close()

    def _replay(self, batches: Any) -> None:
        """Replay the batches the resumed epoch already trained on: read, decoded and augmented, then dropped
        (the workers' generators must advance exactly as they did), no forward or backward pass."""
        epoch, count = self.epoch, self.checkpointer.resume.micro_batches
        began = time.perf_counter()
        for _ in range(count):
            _, _, keys, shards = next(batches)
            epoch.consume(keys, shards)
        epoch.resumed_at = count
        self.checkpointer.finish_replay(epoch.sums, epoch.index)
        epoch.replay_s = time.perf_counter() - began
        if self.info.is_main:
            log.info(
                "epoch %d: replayed its first %d of %d micro-batches in %.1f s; training goes on from there",
                epoch.index + 1,
                count,
                self.plan.steps,
                epoch.replay_s,
            )

    def train_step(self, batch: Batch) -> bool:
        """One micro-batch: forward and backward (gradients synchronised over ranks on the last micro-batch of
        an update only) and, when it completes an update, the optimizer step. True if it did an update."""
        cfg, device, epoch = self.cfg, self.info.device, self.epoch
        images, targets, keys, shards = batch
        epoch.consume(keys, shards)
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        if cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if self.mixup is not None:
            images, targets = self.mixup(images, targets)
        update = epoch.micro_batches % cfg.accum_steps == 0
        sync = self._ddp.no_sync() if self._ddp is not None and not update else contextlib.nullcontext()
        scaler = self.state.scaler
        with sync:
            with autocast(device.type, self.amp):
                loss = self.criterion(self.model(images), targets)
            scaled = loss / cfg.accum_steps
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
        epoch.sums.add_loss(loss)
        if update:
            self._optimizer_step()
        return update

    def _optimizer_step(self) -> None:
        """Clip, step (through the loss scaler under fp16), then the schedule and the EMA follow the update."""
        cfg, state = self.cfg, self.state
        if cfg.clip_grad is not None:
            if state.scaler is not None:
                state.scaler.unscale_(state.optimizer)
            torch.nn.utils.clip_grad_norm_(state.model.parameters(), cfg.clip_grad)
        if state.scaler is not None:
            state.scaler.step(state.optimizer)
            state.scaler.update()
        else:
            state.optimizer.step()
        state.optimizer.zero_grad(set_to_none=True)
        state.global_update += 1
        state.scheduler.step_update(num_updates=state.global_update)
        if state.ema is not None:
            state.ema.update(state.model, step=state.global_update)

    def _after_update(self) -> bool:
        """Log, checkpoint and agree on preemption after an update inside an epoch; True: stop now."""
        cfg, update, epoch = self.cfg, self.state.global_update, self.epoch
        if cfg.log_every and update % cfg.log_every == 0:
            total, n = _dist.all_reduce_sum([float(v) for v in epoch.sums.take_window()], self.info)
            self.metrics.write(
                "step",
                epoch=epoch.index + 1,
                step=update,
                train_loss=total / max(n, 1),
                lr=self.state.optimizer.param_groups[0]["lr"],
            )
        if self.signal_hook is not None:
            self.signal_hook.fire(update, self.info.rank)
        # Never at the epoch's last update: the epoch checkpoint covers it (and the preemption check after
        # it). Every rank decides alike (an update count, a reduced flag), so all of them join the save.
        signum = 0
        if epoch.micro_batches < self.plan.steps:
            signum = self.preempt.agreed()
            if signum or (cfg.save_every_steps and update % cfg.save_every_steps == 0):
                self.checkpointer.save_in_epoch(epoch.index, epoch.micro_batches, epoch.sums)
                self.metrics.write(
                    "checkpoint", epoch=epoch.index + 1, step=update, micro_batches=epoch.micro_batches
                )
        if self.kill_after is not None and update == self.kill_after and self.info.is_main:
            _crash()
        if signum:
            self._stop(signum, epoch.micro_batches)
        return bool(signum)

    def _stop(self, signum: int, micro_batches: int | None) -> None:
        """Log and record a stop on a preemption signal (a collective: every rank calls it, once), after the
        checkpoint of the update or epoch end it stops at."""
        name = signal.Signals(signum).name
        ranks = self.preempt.receivers()
        epoch, update = self.epoch.index, self.state.global_update
        where = (
            f"inside epoch {epoch + 1} after micro-batch {micro_batches} of {self.plan.steps}"
            if micro_batches is not None
            else f"at the end of epoch {epoch + 1}"
        )
        if self.info.is_main:
            log.warning(
                "%s reached rank %s of %d: checkpoint %s saved at update %d (%s); stopping, rerun the same "
                "command to resume",
                name,
                ",".join(map(str, ranks)) or "?",
                self.info.world_size,
                self.checkpointer.last,
                update,
                where,
            )
        self.metrics.write(
            "preempted", signal=name, ranks=ranks, epoch=epoch + 1, step=update, micro_batches=micro_batches
        )
        self.preempted = name

    # the end of an epoch, and of the run

    def end_epoch(self) -> dict[str, Any]:
        """Reduce the epoch's metrics over ranks and write them (and the keys logs), save the epoch
        checkpoint (keeping the newest ``keep_checkpoints``); returns the epoch's metrics record."""
        cfg, info, epoch = self.cfg, self.info, self.epoch
        if info.device.type == "cuda":
            torch.cuda.synchronize(info.device)
        record, rank_shards = self._epoch_record()
        self.records.append(record)
        self.metrics.write("epoch", **record)
        if cfg.log_keys:
            self._write_keys(rank_shards)
        self.checkpointer.save_epoch(epoch.index + 1, record, cfg.keep_checkpoints)
        if info.is_main:
            log.info(
                "epoch %d/%d: loss %.4f, lr %.3g, %.1f images/s/%s, data wait %.0f%%",
                epoch.index + 1,
                cfg.epochs,
                record["train_loss"],
                record["lr"],
                record["images_per_s_per_gpu"],
                "GPU" if info.device.type == "cuda" else "process",
                100 * record["data_wait_share"],
            )
        _dist.barrier(info)
        self.completed = epoch.index + 1
        return record

    def _epoch_record(self) -> tuple[dict[str, Any], list[list[str]]]:
        """The epoch's metrics over all ranks, and the shards each rank read (collectives)."""
        cfg, info, plan, epoch = self.cfg, self.info, self.plan, self.epoch
        elapsed = max(time.perf_counter() - epoch.started, 1e-9)
        samples = plan.steps * cfg.batch_size
        trained = (plan.steps - epoch.resumed_at) * cfg.batch_size  # this invocation's part of the epoch
        loss_total, steps_total, rate_total, share_total = _dist.all_reduce_sum(
            [epoch.sums.loss_sum.item(), float(epoch.sums.loss_n), trained / elapsed, epoch.wait_s / elapsed],
            info,
        )
        (share_max,) = _dist.all_reduce_max([epoch.wait_s / elapsed], info)
        (skipped,) = _dist.all_reduce_sum([float(self.errors.count - epoch.skipped_before)], info)
        rank_shards = _dist.all_gather_objects(sorted(epoch.shards), info)
        readers = collections.Counter(name for names in rank_shards for name in names)
        record = {
            "epoch": epoch.index + 1,
            "step": self.state.global_update,
            "train_loss": loss_total / steps_total if steps_total else float("nan"),
            "lr": self.state.optimizer.param_groups[0]["lr"],
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
        if epoch.resumed_at:
            record["resumed_at_micro_batch"] = epoch.resumed_at
            record["replay_s"] = epoch.replay_s
        return record, rank_shards

    def _write_keys(self, rank_shards: list[list[str]]) -> None:
        """``keys/epochNNN-rankNNN.txt`` (every rank) and ``keys/epochNNN-shards.json`` (rank 0)."""
        keys_dir = self.out / "keys"
        keys_dir.mkdir(parents=True, exist_ok=True)
        number, rank = self.epoch.index + 1, self.info.rank
        (keys_dir / f"epoch{number:03d}-rank{rank:03d}.txt").write_text(
            "".join(k + "\n" for k in self.epoch.keys), encoding="utf-8"
        )
        if self.info.is_main:
            write_json_atomic(
                keys_dir / f"epoch{number:03d}-shards.json",
                {f"rank{r:03d}": names for r, names in enumerate(rank_shards)},
            )

    def _summary(self, run_start: float) -> dict[str, Any]:
        """The run's summary: returned by :func:`train` and written as the last metrics line."""
        cfg, records = self.cfg, self.records

        def mean(key: str) -> float | None:
            return sum(r[key] for r in records) / len(records) if records else None

        summary = {
            "completed_epochs": self.completed,
            "epochs": cfg.epochs,
            "finished": self.completed >= cfg.epochs,
            "preempted": self.preempted,
            "preempted_at_update": self.state.global_update if self.preempted else None,
            "epochs_this_run": len(records),
            "final_train_loss": records[-1]["train_loss"] if records else None,
            "images_per_s_per_gpu": mean("images_per_s_per_gpu"),
            "data_wait_share": mean("data_wait_share"),
            "run_time_s": time.perf_counter() - run_start,
            "world_size": self.info.world_size,
            "checkpoint": str(self.checkpointer.last),
        }
        if not records and self.preempted is None and self.info.is_main:
            log.info("%s already holds all %d epochs; nothing to do", self.checkpointer.last, cfg.epochs)
        self.metrics.write("summary", **summary)
        return summary
