"""Losses of Classifier Tuning: (label-smoothed) cross-entropy and soft-label distillation.

As in the paper's official code, for a synthetic batch with student logits ``s``, frozen zero-shot
(teacher) logits ``t`` and labels ``y``::

    loss = (1 - sl) * CE(s, y; label_smoothing) + sl * SoftCE(s, softmax(t / T))

where ``SoftCE(s, p) = mean_i( -sum_c p_ic * log_softmax(s_i)_c )``: the temperature softens the teacher's
distribution only (the student's logits are not divided by ``T``, and there is no ``T^2`` factor). With hard
pseudo-labels the soft target is replaced by the teacher's argmax. ``sl = 0`` is plain cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy with optional label smoothing (``torch.nn.functional.cross_entropy``)."""
    return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)


def distillation_loss(
    logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 2.0
) -> torch.Tensor:
    """Soft-target cross-entropy against the teacher's ``softmax(teacher / T)``, averaged over the batch."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    soft = F.softmax(teacher_logits.detach().float() / temperature, dim=-1)
    return -(soft * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def pseudo_labels(teacher_logits: torch.Tensor) -> torch.Tensor:
    """Hard pseudo-labels: the teacher's (zero-shot head's) argmax."""
    return teacher_logits.argmax(dim=-1)


def tuning_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    teacher_logits: torch.Tensor | None = None,
    *,
    sl: float = 0.0,
    temperature: float = 2.0,
    label_smoothing: float = 0.0,
    use_pseudo_labels: bool = False,
) -> torch.Tensor:
    """The per-batch loss on synthetic data (see the module docstring); ``sl`` in ``[0, 1]``.

    ``teacher_logits`` is needed when ``sl > 0``; ``use_pseudo_labels`` swaps the soft target for the
    teacher's argmax (cross-entropy, no label smoothing).
    """
    if not 0 <= sl <= 1:
        raise ValueError(f"sl must lie in [0, 1], got {sl}")
    hard = cross_entropy(logits, targets, label_smoothing)
    if sl == 0:
        return hard
    if teacher_logits is None:
        raise ValueError("soft-label distillation (sl > 0) needs the zero-shot head's logits")
    if use_pseudo_labels:
        soft = cross_entropy(logits, pseudo_labels(teacher_logits))
    else:
        soft = distillation_loss(logits, teacher_logits, temperature)
    return (1 - sl) * hard + sl * soft
