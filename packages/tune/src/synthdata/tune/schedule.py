"""Learning-rate schedule: linear warmup then cosine decay to zero, stepped once per optimiser step."""

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
