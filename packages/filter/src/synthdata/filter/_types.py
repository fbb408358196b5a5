"""The per-sample score record and a scoring run's result."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class SampleScore:
    """CLIP's verdict on one sample. Scores are None for a sample that could not be read (``error`` says why)."""

    key: str
    class_index: int
    shard: str
    confidence: float | None = None  # softmax probability of the intended class
    top1: int | None = None  # the class CLIP ranks first
    top1_confidence: float | None = None
    clip_score: float | None = None  # 100 * cosine(image, its own prompt); None without meta["prompt"]
    kept: bool = False
    error: str | None = None

    def to_json(self, classnames: Sequence[str]) -> dict[str, Any]:
        return {
            "key": self.key,
            "class_index": self.class_index,
            "class_name": classnames[self.class_index] if 0 <= self.class_index < len(classnames) else None,
            "confidence": self.confidence,
            "top1": self.top1,
            "top1_confidence": self.top1_confidence,
            "clip_score": self.clip_score,
            "kept": self.kept,
            "shard": self.shard,
            "error": self.error,
        }


@dataclass(slots=True)
class ScoreResult:
    """Every sample's score in key order, plus what was skipped and how long scoring took."""

    scores: list[SampleScore]
    corrupt: list[SampleScore] = field(default_factory=list)
    seconds: float = 0.0
    text_seconds: float = 0.0
    error_messages: list[str] = field(default_factory=list)
    scored_now: int = 0  # images encoded by this run (the rest came from score checkpoints)
    shards_resumed: int = 0  # input shards whose scores came from checkpoints

    @property
    def images_per_second(self) -> float:
        """Images encoded per second of scoring in this run (text head and model loading included)."""
        return self.scored_now / self.seconds if self.seconds > 0 else 0.0


def scored_by_class(scores: Sequence[SampleScore]) -> dict[int, list[SampleScore]]:
    """The samples that have a confidence, by class index (classes and samples in the order met)."""
    by_class: dict[int, list[SampleScore]] = defaultdict(list)
    for s in scores:
        if s.confidence is not None:
            by_class[s.class_index].append(s)
    return by_class
