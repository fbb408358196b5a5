"""Learning-rate schedule: linear warmup then cosine decay to zero, stepped once per optimiser step; and the
official few-shot code's schedule, sized for fewer steps an epoch than it runs (``--frozen-few-shot-batch``)."""

from __future__ import annotations

import math

import torch


def cosine_lr(step: int, total_steps: int, warmup_steps: int, base_lr: float) -> float:
    """The learning rate for optimiser step ``step`` (0-based) of ``total_steps``.

    Warmup: ``base_lr * (step + 1) / warmup_steps`` for ``step < warmup_steps``; then
    ``0.5 * base_lr * (1 + cos(pi * (step - warmup_steps) / (total_steps - warmup_steps)))``, which starts at
    ``base_lr`` and reaches 0 after the last step.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    warmup_steps = max(0, min(warmup_steps, total_steps))
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    decay = total_steps - warmup_steps
    progress = (step - warmup_steps) / decay if decay > 0 else 1.0
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(1.0, progress)))


def warmup_steps_for(warmup_epochs: float, steps_per_epoch: int) -> int:
    """Warmup given in epochs (may be fractional) as a whole number of steps."""
    return round(warmup_epochs * steps_per_epoch)


def cosine_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying :func:`cosine_lr` to each parameter group's initial lr."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: cosine_lr(step, total_steps, warmup_steps, 1.0)
    )


def restarting_cosine_lr(
    step: int, steps_per_epoch: int, schedule_steps_per_epoch: int, epochs: int, warmup_steps: int, base_lr: float
) -> float:
    """The rate of optimiser step ``step`` when a cosine over ``epochs * schedule_steps_per_epoch`` steps is
    indexed as ``i + epoch * schedule_steps_per_epoch`` while each epoch runs ``steps_per_epoch`` steps ``i``.

    This is the official few-shot code (``finetune_fsl``: ``step = i + epoch * num_batches_syn``, the schedule
    sized by the 512-image loader, the steps by the 128-feature loader). With more steps run than planned the
    position jumps back at every epoch start and passes the planned end in the last epochs, where the cosine,
    not clamped, climbs again: ``0.5 * base_lr * (1 + cos(pi * position / total))``, after a linear warmup
    over the first ``warmup_steps`` positions, as there.
    """
    if steps_per_epoch < 1 or schedule_steps_per_epoch < 1 or epochs < 1:
        raise ValueError("steps per epoch, schedule steps per epoch and epochs must be >= 1")
    epoch, i = divmod(step, steps_per_epoch)
    position = i + epoch * schedule_steps_per_epoch
    total = epochs * schedule_steps_per_epoch
    if position < warmup_steps:
        return base_lr * (position + 1) / warmup_steps
    decay = total - warmup_steps
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * (position - warmup_steps) / decay)) if decay > 0 else 0.0


def restarting_cosine_scheduler(
    optimizer: torch.optim.Optimizer, steps_per_epoch: int, schedule_steps_per_epoch: int, epochs: int, warmup_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying :func:`restarting_cosine_lr` to each parameter group's initial lr."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: restarting_cosine_lr(step, steps_per_epoch, schedule_steps_per_epoch, epochs, warmup_steps, 1.0),
    )
