"""A run's checkpoints: what is saved and what a resume restores (training states, per-rank generator states,
the position inside an epoch and its running loss sums), and the clean-up after a killed save.

Files are written by :mod:`synthdata.pretrain.checkpoint` (atomic saves, ``weights_only=True`` loads).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.utils import ModelEmaV3

from synthdata.pretrain import _dist
from synthdata.pretrain._epoch import EpochSums
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
from synthdata.pretrain.config import PretrainError, TrainConfig
from synthdata.shards import item_seed
from synthdata.shards.identity import compare_identity

log = logging.getLogger(__name__)

# Settings a resumed run must share with its checkpoint (anything else may change between invocations).
RESUME_MUST_MATCH = ("model", "img_size", "num_classes")
# Settings that shape the learning-rate schedule; when they change on resume the schedule is rebuilt.
SCHEDULE_KEYS = ("epochs", "sched", "lr", "warmup_epochs", "min_lr")


def seed_all(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators of this process."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


@dataclass(slots=True)
class TrainState:
    """The training objects a checkpoint saves; ``model`` is the plain module (not DDP, not compiled)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    ema: ModelEmaV3 | None
    scaler: torch.amp.GradScaler | None
    global_update: int = 0
    """Optimizer updates since the run started (timm's schedulers are functions of it)."""

    def state_dicts(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
        }


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where in its first epoch a resumed run starts."""

    micro_batches: int = 0
    """Micro-batches of the epoch already trained on (replayed and dropped before training goes on)."""
    sums: dict[str, Any] | None = None
    exact: bool = True
    """Same data layout as the checkpoint: the replayed batches are the trained ones, RNG states restored."""


def _resume_point(
    ckpt: dict[str, Any] | None, layout: dict, cfg: TrainConfig, steps: int, info: _dist.DistInfo
) -> ResumePoint:
    pos = ckpt.get("in_epoch") if ckpt is not None else None
    if not pos:
        return ResumePoint()
    if pos.get("layout") == layout:
        return ResumePoint(int(pos["micro_batches"]), pos["ranks"][info.rank], True)
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
    return ResumePoint(skip, sums, False)


def _check_resume(ckpt: dict[str, Any], cfg: TrainConfig, num_classes: int, path: Path) -> None:
    saved = dict(ckpt.get("config", {}))
    saved["num_classes"] = ckpt.get("num_classes")
    now = {"model": cfg.model, "img_size": cfg.img_size, "num_classes": num_classes}
    check = compare_identity({k: saved.get(k) for k in RESUME_MUST_MATCH}, {k: now[k] for k in RESUME_MUST_MATCH})
    if not check.resumable:
        what = "classes mismatch" if saved.get("num_classes") != num_classes else "settings mismatch"
        raise PretrainError(
            f"{what}: {path} was trained with different settings (checkpoint -> now: {check.describe()}); use a "
            "fresh --out, --fresh, or the original settings"
        )


class Checkpointer:
    """The checkpoints of one run in ``directory``, as seen from one rank.

    The order of use: :meth:`prepare` and :meth:`load` (before the model exists), :meth:`restore` (into
    the fresh training objects), :meth:`restore_generators` (once the model is wrapped), :meth:`bind` (what
    the saves write), then :meth:`finish_replay` in a resumed epoch and the saves. ``layout`` holds the
    settings that decide which batches each rank sees within an epoch, and in which order.
    """

    def __init__(self, directory: Path, info: _dist.DistInfo, layout: dict[str, Any]) -> None:
        self.directory = directory
        self.last = directory / LAST
        self.info = info
        self.layout = layout
        self.resumed = False
        """Whether this run continues from ``last.pt``."""
        self.resume = ResumePoint()
        self._loaded: dict[str, Any] | None = None
        self._rng: Any = None
        self._state: TrainState | None = None
        self._run_info: dict[str, Any] = {}

    def prepare(self) -> None:
        """Create the directory and delete the temp files of killed saves (rank 0); every rank waits for it."""
        if self.info.is_main:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise PretrainError(f"cannot create --out {self.directory.parent}: {exc.strerror}") from exc
            for path in remove_stale_temps(self.directory):
                log.info("removed %s, left by a save that was killed before it finished", path)
        _dist.barrier(self.info)

    def load(self, cfg: TrainConfig, num_classes: int) -> None:
        """Read ``last.pt`` if there is one (ignored with ``--fresh``) and check it fits ``cfg``."""
        if not self.last.exists():
            return
        if not cfg.resume:
            if self.info.is_main:
                log.info("--fresh: starting from scratch; %s is replaced at the next save", self.last)
            return
        self._loaded = load_checkpoint(self.last)
        _check_resume(self._loaded, cfg, num_classes, self.last)
        self.resumed = True
        self._rng = self._loaded.get("rng")

    def restore(self, state: TrainState, cfg: TrainConfig, steps: int, updates_per_epoch: int) -> int:
        """Load the checkpoint's training states into ``state`` and find where the run goes on; returns the
        completed epochs (0 for a fresh run). ``steps``: micro-batches per epoch on this run's layout."""
        self.resume = _resume_point(self._loaded, self.layout, cfg, steps, self.info)
        ckpt = self._loaded
        if ckpt is None:
            return 0
        state.model.load_state_dict(ckpt["model"])
        state.optimizer.load_state_dict(ckpt["optimizer"])
        if state.ema is not None:
            if ckpt.get("ema") is not None:
                state.ema.load_state_dict(ckpt["ema"])
            else:
                state.ema.set(state.model)
        if state.scaler is not None and ckpt.get("scaler") is not None:
            state.scaler.load_state_dict(ckpt["scaler"])
        start_epoch, state.global_update = int(ckpt["epoch"]), int(ckpt["global_update"])
        saved = ckpt.get("config", {})
        saved_upe = ckpt.get("updates_per_epoch", state.global_update // max(start_epoch, 1))
        changed = [k for k in SCHEDULE_KEYS if saved.get(k) != getattr(cfg, k)]
        if saved_upe != updates_per_epoch:
            changed.append("updates per epoch (batch, ranks or accumulation)")
        if changed or not self.resume.exact:
            # timm's schedulers are functions of the update count: count from where this run's layout resumes
            state.global_update = start_epoch * updates_per_epoch + self.resume.micro_batches // cfg.accum_steps
        if changed:
            # restart the schedule from the new settings at this epoch rather than keep one sized for the old
            # run (e.g. after raising --epochs)
            if self.info.is_main:
                log.warning(
                    "the learning-rate schedule follows the new settings from epoch %d (changed: %s)",
                    start_epoch + 1,
                    ", ".join(changed),
                )
        else:
            state.scheduler.load_state_dict(ckpt["scheduler"])
        state.scheduler.step_update(num_updates=state.global_update)
        return start_epoch

    def restore_generators(self, seed: int, start_epoch: int, workers: int) -> None:
        """This rank's generator states from the checkpoint (bit-exact resume), else seeded per rank; then the
        loaded checkpoint is dropped (only the generator states are kept, for a replay)."""
        info, rng = self.info, self._rng
        if isinstance(rng, list) and len(rng) == info.world_size:
            restore_rng(rng[info.rank], info.device)
        else:
            if self.resumed:
                log.warning(
                    "checkpoint was written by %s ranks, this run has %d: generator states are reseeded, so "
                    "the resumed run is not bit-identical to an uninterrupted one",
                    len(rng) if isinstance(rng, list) else "?",
                    info.world_size,
                )
            seed_all(item_seed(seed, f"rank-{info.rank}-epoch-{start_epoch}", stream="pretrain-train"))
        saved_workers = self._loaded.get("data_workers") if self._loaded is not None else None
        if saved_workers is not None and saved_workers != workers and info.is_main:
            log.warning(
                "checkpoint was written with %d DataLoader workers per rank, this run uses %d: the sample "
                "order differs, so the resumed run is not bit-identical to an uninterrupted one",
                saved_workers,
                workers,
            )
        self._loaded = None

    def finish_replay(self, sums: EpochSums, epoch: int) -> None:
        """After the replay of the resumed epoch's first micro-batches (their keys in ``sums``): take the saved
        running sums and, on the same layout, the generator states of the moment the checkpoint was taken
        (the replay drew from them)."""
        resume = self.resume
        if resume.sums is not None:
            saved_keys = resume.sums.get("keys_sha256")
            if resume.exact and saved_keys and saved_keys != sums.keys_digest.hex():
                log.warning(
                    "rank %d: the %d replayed micro-batches of epoch %d hold other samples than the ones "
                    "trained on before the checkpoint (did the shards under --data change?); the run "
                    "goes on but is not bit-identical to an uninterrupted one",
                    self.info.rank,
                    resume.micro_batches,
                    epoch + 1,
                )
            sums.load(resume.sums)
        if resume.exact:
            restore_rng(self._rng[self.info.rank], self.info.device)

    def bind(self, state: TrainState, run_info: dict[str, Any]) -> None:
        """What the saves write: the training objects in ``state`` and the run's description (``config``,
        ``num_classes``, ``classes``, ``data_config``, ``world_size``, ``data_workers``,
        ``updates_per_epoch``, in the order they are saved)."""
        self._state = state
        self._run_info = dict(run_info)

    def _payload(self, epochs_done: int, rng: list[Any], in_epoch: Any, record: Any) -> dict[str, Any]:
        if self._state is None:
            raise RuntimeError("Checkpointer.bind() must be called before a save")
        return {
            "format": FORMAT,
            "epoch": epochs_done,
            "global_update": self._state.global_update,
            **self._state.state_dicts(),
            "rng": rng,
            **self._run_info,
            "metrics": record,
            "in_epoch": in_epoch,
        }

    def save_epoch(self, epochs_done: int, record: dict[str, Any], keep: int) -> None:
        """The checkpoint at the end of an epoch: ``epoch_NNN.pt`` and ``last.pt``, the newest ``keep`` epoch
        files kept (a collective: every rank calls it; rank 0 writes)."""
        rng = _dist.all_gather_objects(capture_rng(self.info.device), self.info)
        if self.info.is_main:
            save_checkpoint(self._payload(epochs_done, rng, None, record), self.directory, epochs_done, keep)

    def save_in_epoch(self, epoch: int, micro_batches: int, sums: EpochSums) -> None:
        """Checkpoint right after an optimizer update inside ``epoch`` (0-based), ``micro_batches`` into it
        (a collective: every rank calls it; rank 0 replaces ``last.pt``)."""
        gathered = _dist.all_gather_objects(
            {"rng": capture_rng(self.info.device), "sums": sums.to_saved()}, self.info
        )
        if self.info.is_main:
            in_epoch = {
                "epoch": epoch,
                "micro_batches": micro_batches,
                "updates": micro_batches // int(self.layout["accum_steps"]),
                "layout": self.layout,
                "ranks": [g["sums"] for g in gathered],
            }
            payload = self._payload(epoch, [g["rng"] for g in gathered], in_epoch, None)
            save_in_epoch_checkpoint(payload, self.directory)
