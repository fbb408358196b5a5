"""The training loops: the head on cached frozen features (default) and end-to-end fine-tuning.

Each optimiser step sees one synthetic batch (``batch_size``) and, in the few-shot setting, one real batch
(``real_batch_size``); the step's loss is ``syn_weight * L_syn + real_weight * L_real`` where ``L_syn`` is
:func:`synthdata.tune.losses.tuning_loss` (cross-entropy mixed with soft-label distillation from the frozen
zero-shot head) and ``L_real`` is the (label-smoothed) cross-entropy on the real labels. An epoch is one pass
over the synthetic set (over the real set when there is no synthetic set); the real batches cycle over their
own reshuffled order. AdamW, linear warmup + cosine decay per step, gradient-norm clipping.

Batch order is a pure function of ``(seed, epoch)`` for synthetic data and ``(seed, step)`` for real data,
so a run resumed from a per-epoch :class:`~synthdata.tune.checkpoint.Checkpoint` sees exactly the batches
an uninterrupted run sees, and ends with the same weights.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from synthdata.shards import item_seed
from synthdata.tune.checkpoint import Checkpoint
from synthdata.tune.config import TuneConfig
from synthdata.tune.losses import cross_entropy, tuning_loss
from synthdata.tune.schedule import cosine_scheduler, restarting_cosine_scheduler, warmup_steps_for

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Batch:
    """Model inputs (features or preprocessed images), labels and, for synthetic batches, the frozen
    zero-shot head's logits on the same samples."""

    inputs: torch.Tensor
    labels: torch.Tensor
    teacher: torch.Tensor | None = None


StepBatches = tuple[Batch | None, Batch | None]


def _permutation(n: int, seed: int, stream: str, index: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(item_seed(seed, str(index), stream=stream))
    return torch.randperm(n, generator=generator)


def syn_epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The synthetic samples' order in ``epoch``: a permutation of ``range(n)`` fixed by (seed, epoch)."""
    return _permutation(n, seed, "tune-syn", epoch)


def real_batch_indices(step: int, n: int, batch_size: int, seed: int) -> torch.Tensor:
    """The real samples of optimiser step ``step``: the real set is cut into passes of ``ceil(n / batch)``
    batches (the last one short), each pass a fresh permutation fixed by (seed, pass index)."""
    per_pass = math.ceil(n / batch_size)
    index, within = divmod(step, per_pass)
    return _permutation(n, seed, "tune-real", index)[within * batch_size : (within + 1) * batch_size]


def steps_per_epoch(cfg: TuneConfig, num_syn: int, num_real: int) -> int:
    if num_syn:
        return math.ceil(num_syn / cfg.batch_size)
    if num_real:
        return math.ceil(num_real / cfg.real_batch_size)
    raise ValueError("nothing to train on: no synthetic and no real samples")


def run_loop(
    *,
    cfg: TuneConfig,
    modules: dict[str, torch.nn.Module],
    params: list[torch.nn.Parameter],
    forward: Callable[[torch.Tensor], torch.Tensor],
    epoch_batches: Callable[[int], Iterator[StepBatches]],
    steps_per_epoch: int,
    checkpoint: Checkpoint | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    set_train_mode: Callable[[], None] | None = None,
    schedule_steps_per_epoch: int | None = None,
    evaluate_epoch: Callable[[], float] | None = None,
) -> list[dict]:
    """The optimisation loop shared by both modes; returns one log row per epoch.

    With ``checkpoint``, a saved state is loaded first (the ``modules``' weights, optimiser, schedule, rows)
    and training continues after its epoch; the state is saved after every epoch, before ``on_epoch``.
    ``schedule_steps_per_epoch``: size the cosine for that many steps an epoch instead of the steps run
    (:func:`~synthdata.tune.schedule.restarting_cosine_lr`). ``evaluate_epoch``: called after each epoch,
    its value (the test set's top-1) stored in the row as ``test_top1`` before the state is saved.
    """
    optimizer = torch.optim.AdamW(params, lr=cfg.resolved_lr(), weight_decay=cfg.weight_decay)
    total = cfg.epochs * steps_per_epoch
    if schedule_steps_per_epoch is None:
        scheduler = cosine_scheduler(optimizer, total, warmup_steps_for(cfg.warmup_epochs, steps_per_epoch))
    else:
        warmup = warmup_steps_for(cfg.warmup_epochs, schedule_steps_per_epoch)
        scheduler = restarting_cosine_scheduler(optimizer, steps_per_epoch, schedule_steps_per_epoch, cfg.epochs, warmup)
    rows: list[dict] = []
    start_epoch = step = 0
    state = checkpoint.load() if checkpoint is not None else None
    if state is not None:
        for name, module in modules.items():
            module.load_state_dict(state["modules"][name])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        rows, start_epoch, step = list(state["rows"]), int(state["epoch"]), int(state["step"])
    elif total < 50:
        log.warning(
            "only %d optimiser steps (%d a epoch x %d epochs): the head can move only a little; use more "
            "epochs or a smaller batch size for small data",
            total,
            steps_per_epoch,
            cfg.epochs,
        )
    for epoch in range(start_epoch, cfg.epochs):
        if set_train_mode is not None:
            set_train_mode()
        row = _train_epoch(cfg, epoch, step, epoch_batches(epoch), forward, params, optimizer, scheduler)
        if evaluate_epoch is not None:
            row["test_top1"] = evaluate_epoch()
            log.info("epoch %d/%d  test top-1 %.4f", epoch + 1, cfg.epochs, row["test_top1"])
        rows.append(row)
        step = row["step"]
        log.info(
            "epoch %d/%d  loss %.4f  train top-1 %.3f  lr %.2e",
            epoch + 1,
            cfg.epochs,
            row["loss"],
            row["train_top1"] or 0.0,
            row["lr"],
        )
        if checkpoint is not None:
            checkpoint.save(
                {
                    "modules": {
                        n: {k: v.detach().cpu() for k, v in m.state_dict().items()}
                        for n, m in modules.items()
                    },
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rows": rows,
                    "epoch": epoch + 1,
                    "step": step,
                }
            )
        if on_epoch is not None:
            on_epoch(row)
    return rows


@dataclass(slots=True)
class _Totals:
    """Running sums over one epoch's optimiser steps."""

    loss: float = 0.0
    syn_loss: float = 0.0
    real_loss: float = 0.0
    correct: int = 0
    seen: int = 0
    steps: int = 0

    def count(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.correct += int((logits.argmax(-1) == labels).sum())
        self.seen += len(labels)


def _train_epoch(
    cfg: TuneConfig,
    epoch: int,
    step: int,
    batches: Iterator[StepBatches],
    forward: Callable[[torch.Tensor], torch.Tensor],
    params: list[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> dict:
    """One optimiser step per item of ``batches``; returns the epoch's log row (``step``: the optimiser
    steps done once it ends, ``step`` before it)."""
    start = time.perf_counter()
    totals = _Totals()
    step_lr = optimizer.param_groups[0]["lr"]
    for syn, real in batches:
        step_lr = optimizer.param_groups[0]["lr"]
        loss = _step_loss(cfg, forward, syn, real, params[0].device, totals)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        totals.loss += loss.item()
        totals.steps += 1
    n = totals.steps
    if n == 0:
        raise RuntimeError(f"epoch {epoch} produced no batches")
    return {
        "epoch": epoch + 1,
        "step": step + n,
        "lr": step_lr,
        "loss": totals.loss / n,
        "syn_loss": totals.syn_loss / n,
        "real_loss": totals.real_loss / n,
        "train_top1": totals.correct / totals.seen if totals.seen else None,
        "seconds": time.perf_counter() - start,
    }


def _step_loss(
    cfg: TuneConfig,
    forward: Callable[[torch.Tensor], torch.Tensor],
    syn: Batch | None,
    real: Batch | None,
    device: torch.device,
    totals: _Totals,
) -> torch.Tensor:
    """``syn_weight * L_syn + real_weight * L_real`` of one step; the parts and the training accuracy (on
    the synthetic batch, else the real one) are added to ``totals``."""
    loss = torch.zeros((), device=device)
    if syn is not None:
        logits = forward(syn.inputs)
        syn_loss = tuning_loss(
            logits,
            syn.labels,
            syn.teacher,
            sl=cfg.sl,
            temperature=cfg.sl_temperature,
            label_smoothing=cfg.label_smoothing,
            use_pseudo_labels=cfg.pseudo_labels,
        )
        loss = loss + cfg.syn_weight * syn_loss
        totals.syn_loss += syn_loss.item()
        totals.count(logits, syn.labels)
    if real is not None:
        logits_r = forward(real.inputs)
        real_loss = cross_entropy(logits_r, real.labels, cfg.label_smoothing)
        loss = loss + cfg.real_weight * real_loss
        totals.real_loss += real_loss.item()
        if syn is None:
            totals.count(logits_r, real.labels)
    return loss


def train_head_on_features(
    head: torch.nn.Module,
    cfg: TuneConfig,
    *,
    syn: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
    real: tuple[torch.Tensor, torch.Tensor] | None,
    device: str | torch.device = "cpu",
    checkpoint: Checkpoint | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    evaluate_epoch: Callable[[], float] | None = None,
) -> list[dict]:
    """Train ``head`` in place on cached features.

    ``syn = (features, labels, zero-shot logits)``, ``real = (features, labels)``; either may be None. The
    batch sizes and the schedule's length are :meth:`TuneConfig.feature_batches`'s.
    """
    device = torch.device(device)
    head.to(device).train()
    syn_t = tuple(t.to(device) for t in syn) if syn is not None else None
    real_t = tuple(t.to(device) for t in real) if real is not None else None
    n_syn = len(syn_t[0]) if syn_t else 0
    n_real = len(real_t[0]) if real_t else 0
    syn_batch, real_batch, schedule_per_epoch = cfg.feature_batches(n_syn, n_real)
    per_epoch = (
        steps_per_epoch(cfg, n_syn, n_real) if schedule_per_epoch is None else math.ceil(n_syn / syn_batch)
    )

    def epoch_batches(epoch: int) -> Iterator[StepBatches]:
        order = syn_epoch_order(n_syn, cfg.seed, epoch).to(device) if n_syn else None
        for i in range(per_epoch):
            s = r = None
            if order is not None:
                idx = order[i * syn_batch : (i + 1) * syn_batch]
                s = Batch(syn_t[0][idx], syn_t[1][idx], syn_t[2][idx])
            if n_real:
                idx = real_batch_indices(epoch * per_epoch + i, n_real, real_batch, cfg.seed)
                idx = idx.to(device)
                r = Batch(real_t[0][idx], real_t[1][idx])
            yield s, r

    rows = run_loop(
        cfg=cfg,
        modules={"head": head},
        params=list(head.parameters()),
        forward=head,
        epoch_batches=epoch_batches,
        steps_per_epoch=per_epoch,
        checkpoint=checkpoint,
        on_epoch=on_epoch,
        schedule_steps_per_epoch=schedule_per_epoch,
        evaluate_epoch=evaluate_epoch,
    )
    head.eval()
    return rows


def freeze_batchnorm(module: torch.nn.Module) -> None:
    """Put every batch-norm layer in eval mode (running statistics fixed), as the paper's code does."""
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def _shuffled_stream(syn_set, seed: int, epoch: int, buffer: int) -> Iterator[tuple[int, object, int]]:
    """``(index, image, label)`` of every synthetic sample once, in an order fixed by (seed, epoch): the
    shards in a seeded order, then a seeded shuffle buffer (decoding stays streaming)."""
    rng = random.Random(item_seed(seed, str(epoch), stream="tune-e2e"))
    shards = syn_set.work_units(None)
    rng.shuffle(shards)
    pool: list[tuple[int, object, int]] = []
    for shard in shards:
        for item in syn_set.iter_unit(shard, None):
            pool.append(item)
            if len(pool) >= buffer:
                yield pool.pop(rng.randrange(len(pool)))
    rng.shuffle(pool)
    yield from pool


def finetune_end_to_end(
    bundle,
    head: torch.nn.Module,
    cfg: TuneConfig,
    *,
    syn_set=None,
    syn_teacher: torch.Tensor | None = None,
    real_images: list | None = None,
    real_labels: torch.Tensor | None = None,
    checkpoint: Checkpoint | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    shuffle_buffer: int = 1000,
    evaluate_epoch: Callable[[], float] | None = None,
) -> list[dict]:
    """Train the image encoder (``bundle.model.visual``) and ``head`` together, in place.

    Images go through ``bundle.preprocess`` every step; synthetic shards stream through
    :func:`synthdata.shards.iter_samples` in a seeded order. Batch-norm statistics stay frozen.
    ``syn_teacher[i]`` holds the frozen zero-shot logits of synthetic sample ``i`` (from the feature cache:
    the preprocessing is deterministic, so they equal the frozen encoder's output on the same input).
    """
    device = torch.device(bundle.device)
    visual = bundle.model.visual
    head.to(device)
    n_syn = len(syn_set) if syn_set is not None else 0
    n_real = len(real_images) if real_images else 0
    batches = _ImageBatches(
        cfg,
        bundle.preprocess,
        device,
        steps_per_epoch(cfg, n_syn, n_real),
        syn_set if n_syn else None,
        syn_teacher,
        real_images if n_real else None,
        real_labels,
        shuffle_buffer,
    )

    def forward(x: torch.Tensor) -> torch.Tensor:
        return head(bundle.model.encode_image(x.to(device=device, dtype=bundle.dtype)))

    def set_train_mode() -> None:
        visual.train()
        freeze_batchnorm(visual)
        head.train()

    params = [p for p in visual.parameters()] + list(head.parameters())
    for p in visual.parameters():
        p.requires_grad_(True)
    try:
        rows = run_loop(
            cfg=cfg,
            modules={"head": head, "visual": visual},
            params=params,
            forward=forward,
            epoch_batches=batches,
            steps_per_epoch=batches.per_epoch,
            checkpoint=checkpoint,
            on_epoch=on_epoch,
            set_train_mode=set_train_mode,
            evaluate_epoch=evaluate_epoch,
        )
    finally:
        visual.eval()
        head.eval()
        for p in visual.parameters():
            p.requires_grad_(False)
    return rows


@dataclass(slots=True)
class _ImageBatches:
    """The step batches of end-to-end fine-tuning, called with the epoch: images preprocessed every step
    (synthetic ones streamed in a seeded order with their zero-shot logits, real ones by
    :func:`real_batch_indices`), labels on ``device``."""

    cfg: TuneConfig
    preprocess: Callable[[object], torch.Tensor]
    device: torch.device
    per_epoch: int
    syn_set: object | None  # an ImageSet of shards; None: no synthetic data
    syn_teacher: torch.Tensor | None
    real_images: list | None  # None: no real data
    real_labels: torch.Tensor | None
    shuffle_buffer: int

    def __call__(self, epoch: int) -> Iterator[StepBatches]:
        step = epoch * self.per_epoch
        if self.syn_set is None:
            for i in range(self.per_epoch):
                yield None, self._real(step + i)
            return
        batch: list[tuple[int, object, int]] = []
        i = 0
        for item in _shuffled_stream(self.syn_set, self.cfg.seed, epoch, self.shuffle_buffer):
            batch.append(item)
            if len(batch) == self.cfg.batch_size:
                yield self._syn(batch), self._real(step + i)
                batch, i = [], i + 1
        if batch:
            yield self._syn(batch), self._real(step + i)

    def _real(self, step: int) -> Batch | None:
        if self.real_images is None:
            return None
        assert self.real_labels is not None
        idx = real_batch_indices(step, len(self.real_images), self.cfg.real_batch_size, self.cfg.seed)
        x = torch.stack([self.preprocess(self.real_images[int(i)]) for i in idx])
        return Batch(x, self.real_labels[idx].to(self.device))

    def _syn(self, items: list[tuple[int, object, int]]) -> Batch:
        idx = torch.as_tensor([i for i, _, _ in items])
        x = torch.stack([self.preprocess(im) for _, im, _ in items])
        y = torch.as_tensor([c for _, _, c in items], dtype=torch.int64).to(self.device)
        teacher = self.syn_teacher[idx].to(self.device) if self.syn_teacher is not None else None
        return Batch(x, y, teacher)
