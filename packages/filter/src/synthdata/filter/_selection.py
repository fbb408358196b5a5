"""Selection rules: which scored samples to keep, per class, reproducibly."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthdata.filter._types import SampleScore, scored_by_class
from synthdata.filter.config import RULE_NAMES as RULES
from synthdata.shards import item_seed


def check_rule(rule: str, per_class: int | None, threshold: float | None) -> None:
    """Raise ``ValueError`` for an unknown rule or settings it cannot use."""
    if rule not in RULES:
        raise ValueError(f"unknown selection rule {rule!r}; choose one of {', '.join(RULES)}")
    if per_class is not None and per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a probability in [0, 1], got {threshold}")
    if rule == "topk" and per_class is None:
        raise ValueError("rule 'topk' needs per_class (--keep-per-class N)")


def _most_confident(samples: list[SampleScore]) -> list[SampleScore]:
    return sorted(samples, key=lambda s: (-(s.confidence or 0.0), s.key))


def select(
    scores: Sequence[SampleScore],
    *,
    rule: str = "paper",
    num_classes: int,
    per_class: int | None = None,
    threshold: float | None = None,
    seed: int = 0,
) -> set[str]:
    """Return the keys to keep. Samples without scores (unreadable) are never kept.

    - ``paper`` (He et al.): threshold ``t`` (default ``1/C``) on the intended class's softmax confidence;
      with ``per_class`` N, a class with at least N samples above ``t`` keeps N of them drawn at random
      (seeded per class), otherwise its N most confident samples. Without N, all samples above ``t``.
    - ``topk``: the ``per_class`` most confident samples of each class.
    - ``threshold``: samples whose confidence is above ``t`` (default ``1/C``), at most the ``per_class``
      most confident of a class when N is given.
    - ``top1``: samples whose top-1 class is their own, capped like ``threshold``.

    The result depends only on the scores, the settings and ``seed`` (not on read order or workers).
    """
    check_rule(rule, per_class, threshold)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    t = 1.0 / num_classes if threshold is None else threshold
    by_class = scored_by_class(scores)
    kept: set[str] = set()
    for cls in sorted(by_class):
        samples = sorted(by_class[cls], key=lambda s: s.key)
        if rule == "paper":
            above = [s for s in samples if s.confidence > t]
            if per_class is None:
                chosen = above
            elif len(above) >= per_class:
                rng = np.random.default_rng(item_seed(seed, f"filter-paper-class-{cls}"))
                chosen = [above[i] for i in sorted(rng.choice(len(above), size=per_class, replace=False))]
            else:
                chosen = _most_confident(samples)[:per_class]
        elif rule == "topk":
            chosen = _most_confident(samples)[:per_class]
        else:
            if rule == "threshold":
                passing = [s for s in samples if s.confidence > t]
            else:
                passing = [s for s in samples if s.top1 == cls]
            chosen = passing if per_class is None else _most_confident(passing)[:per_class]
        kept.update(s.key for s in chosen)
    return kept
