"""Selection rules on hand-made scores: exactly the right keys, reproducible by seed."""

from __future__ import annotations

import pytest

from synthdata.filter import SampleScore, check_rule, select


def _s(key: str, cls: int, conf: float | None, top1: int | None = None) -> SampleScore:
    return SampleScore(
        key=key, class_index=cls, shard="x.tar", confidence=conf, top1=cls if top1 is None else top1
    )


# 2 classes, so the paper's default threshold is 1/2
SCORES = [
    _s("a0", 0, 0.9),
    _s("a1", 0, 0.7),
    _s("a2", 0, 0.6),
    _s("a3", 0, 0.2, top1=1),
    _s("a4", 0, None),  # unreadable
    _s("b0", 1, 0.45, top1=0),
    _s("b1", 1, 0.55),
    _s("b2", 1, 0.1, top1=0),
]


def test_paper_rule_quota_random_above_threshold_else_most_confident():
    kept = select(SCORES, rule="paper", num_classes=2, per_class=2, seed=0)
    class0 = {k for k in kept if k.startswith("a")}
    class1 = {k for k in kept if k.startswith("b")}
    # class 0: three above 0.5, so two of them at random; class 1: only one above, so the two most confident
    assert len(class0) == 2 and class0 <= {"a0", "a1", "a2"}
    assert class1 == {"b1", "b0"}


def test_paper_rule_is_reproducible_and_seeded():
    runs = {frozenset(select(SCORES, rule="paper", num_classes=2, per_class=2, seed=s)) for s in range(20)}
    assert select(SCORES, rule="paper", num_classes=2, per_class=2, seed=3) == select(
        list(reversed(SCORES)), rule="paper", num_classes=2, per_class=2, seed=3
    )
    assert len(runs) > 1  # the seed changes which of the confident samples are drawn


def test_paper_rule_without_quota_keeps_all_above():
    assert select(SCORES, rule="paper", num_classes=2) == {"a0", "a1", "a2", "b1"}
    assert select(SCORES, rule="paper", num_classes=2, threshold=0.65) == {"a0", "a1"}


def test_topk():
    assert select(SCORES, rule="topk", num_classes=2, per_class=1) == {"a0", "b1"}
    assert select(SCORES, rule="topk", num_classes=2, per_class=3) == {"a0", "a1", "a2", "b1", "b0", "b2"}


def test_threshold_with_and_without_cap():
    assert select(SCORES, rule="threshold", num_classes=2, threshold=0.5) == {"a0", "a1", "a2", "b1"}
    assert select(SCORES, rule="threshold", num_classes=2, threshold=0.5, per_class=1) == {"a0", "b1"}
    assert select(SCORES, rule="threshold", num_classes=4) == {"a0", "a1", "a2", "b0", "b1"}  # 1/C = 0.25


def test_top1_must_match():
    assert select(SCORES, rule="top1", num_classes=2) == {"a0", "a1", "a2", "b1"}
    assert select(SCORES, rule="top1", num_classes=2, per_class=2) == {"a0", "a1", "b1"}


def test_unreadable_samples_are_never_kept():
    for rule in ("paper", "topk", "threshold", "top1"):
        assert "a4" not in select(SCORES, rule=rule, num_classes=2, per_class=10, threshold=0.0)


@pytest.mark.parametrize(
    ("rule", "per_class", "threshold", "match"),
    [
        ("best", None, None, "unknown selection rule"),
        ("topk", None, None, "needs per_class"),
        ("paper", 0, None, "per_class must be >= 1"),
        ("threshold", None, 1.5, "threshold must be a probability"),
    ],
)
def test_bad_settings(rule, per_class, threshold, match):
    with pytest.raises(ValueError, match=match):
        check_rule(rule, per_class, threshold)
