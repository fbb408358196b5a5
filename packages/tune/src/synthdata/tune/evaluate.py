"""Evaluation metrics: top-1, per-class accuracy, confusion matrix and its PNG."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from synthdata.tune._io import atomic_write_bytes


@dataclass(slots=True)
class Evaluation:
    """``top1`` in [0, 1]; ``per_class[c]`` the accuracy on class ``c`` (None when it has no samples);
    ``confusion[i, j]`` counts samples of true class ``i`` predicted as ``j``."""

    top1: float
    per_class: list[float | None]
    confusion: np.ndarray
    count: int

    @property
    def mean_per_class(self) -> float:
        vals = [v for v in self.per_class if v is not None]
        return float(np.mean(vals)) if vals else float("nan")


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` int64 counts, rows = true class, columns = predicted class."""
    predictions, labels = np.asarray(predictions, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    flat = labels * num_classes + predictions
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def evaluate_logits(logits: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None) -> Evaluation:
    """Top-1 (ties go to the lowest class index, as ``argmax`` does), per-class accuracy, confusion."""
    num_classes = num_classes if num_classes is not None else logits.shape[-1]
    preds = logits.argmax(dim=-1).cpu().numpy()
    y = labels.cpu().numpy()
    if len(y) == 0:
        raise ValueError("evaluation needs at least one sample")
    cm = confusion_matrix(preds, y, num_classes)
    totals = cm.sum(axis=1)
    per_class = [float(cm[c, c] / totals[c]) if totals[c] else None for c in range(num_classes)]
    return Evaluation(float((preds == y).mean()), per_class, cm, len(y))


def save_confusion_png(
    confusion: np.ndarray,
    classnames: Sequence[str],
    path: str | os.PathLike[str],
    *,
    title: str = "",
    max_labels: int = 40,
) -> Path:
    """Draw the row-normalised confusion matrix (counts in cells for small matrices) with matplotlib Agg."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    n = len(classnames)
    rows = confusion.sum(axis=1, keepdims=True)
    norm = np.divide(confusion, rows, out=np.zeros(confusion.shape, dtype=float), where=rows > 0)
    side = min(4 + 0.35 * n, 24)
    fig = Figure(figsize=(side + 1.5, side), dpi=100)
    ax = fig.add_subplot()
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if n <= max_labels:
        ax.set_xticks(range(n), [str(c) for c in classnames], rotation=90, fontsize=8)
        ax.set_yticks(range(n), [str(c) for c in classnames], fontsize=8)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if confusion[i, j]:
                    ax.text(
                        j,
                        i,
                        str(int(confusion[i, j])),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())
