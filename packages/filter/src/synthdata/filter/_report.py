"""The filter report: per-class counts, what CLIP chose instead, confidence histograms, contact sheets."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from synthdata.filter._types import SampleScore, scored_by_class
from synthdata.filter.layout import BY_CLASS_PNG, HIST_PNG, LEAST_CONFIDENT_PNG, MOST_CONFIDENT_PNG
from synthdata.shards import contact_sheet

MAX_GRID_CLASSES = 48


def class_table(
    scores: Sequence[SampleScore], corrupt: Sequence[SampleScore], classnames: Sequence[str]
) -> list[dict[str, Any]]:
    """Per class: samples scored, kept, dropped, unreadable, and for the dropped ones CLIP's top-1 instead."""
    rows: list[dict[str, Any]] = []
    by_class: dict[int, list[SampleScore]] = defaultdict(list)
    for s in scores:
        by_class[s.class_index].append(s)
    bad = Counter(s.class_index for s in corrupt)
    for cls, name in enumerate(classnames):
        samples = by_class.get(cls, [])
        dropped = [s for s in samples if not s.kept]
        instead = Counter(classnames[s.top1] for s in dropped if s.top1 is not None and s.top1 != cls)
        confs = [s.confidence for s in samples if s.confidence is not None]
        rows.append(
            {
                "index": cls,
                "name": name,
                "scored": len(samples),
                "kept": len(samples) - len(dropped),
                "dropped": len(dropped),
                "unreadable": bad.get(cls, 0),
                "dropped_top1_own_class": sum(1 for s in dropped if s.top1 == cls),
                "chosen_instead": dict(instead.most_common()),
                "mean_confidence": sum(confs) / len(confs) if confs else None,
            }
        )
    return rows


def extreme_keys(
    scores: Sequence[SampleScore], per_class: int
) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    """Per class, the keys of the ``per_class`` most and least confident samples (for contact sheets)."""
    most, least = {}, {}
    for cls, samples in scored_by_class(scores).items():
        ranked = sorted(samples, key=lambda s: (-s.confidence, s.key))
        most[cls] = [s.key for s in ranked[:per_class]]
        least[cls] = [s.key for s in reversed(ranked[-per_class:])]
    return most, least


_BINS = [i / 20 for i in range(21)]
_COLORS = ["#2a9d8f", "#e76f51"]  # kept, dropped


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _overall_hist(scores: Sequence[SampleScore], path: Path, threshold: float | None, title: str) -> Path:
    plt = _pyplot()
    kept = [s.confidence for s in scores if s.confidence is not None and s.kept]
    dropped = [s.confidence for s in scores if s.confidence is not None and not s.kept]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist([kept, dropped], bins=_BINS, stacked=True, label=["kept", "dropped"], color=_COLORS)
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:.3g}")
    ax.set_xlabel("CLIP softmax confidence of the intended class")
    ax.set_ylabel("samples")
    ax.set_title(title, fontsize=9)
    ax.legend()
    return _save(plt, fig, path)


def _class_grid(
    scores: Sequence[SampleScore], classnames: Sequence[str], path: Path, threshold: float | None
) -> Path:
    plt = _pyplot()
    shown = list(range(min(len(classnames), MAX_GRID_CLASSES)))
    cols = min(6, max(1, len(shown)))
    rows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 1.7 * rows), squeeze=False, sharex=True)
    by_class: dict[int, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for s in scores:
        if s.confidence is not None:
            by_class[s.class_index][0 if s.kept else 1].append(s.confidence)
    for ax in axes.flat:
        ax.set_visible(False)
    for i, cls in enumerate(shown):
        ax = axes.flat[i]
        ax.set_visible(True)
        k, d = by_class[cls]
        ax.hist([k, d], bins=_BINS, stacked=True, color=_COLORS)
        if threshold is not None:
            ax.axvline(threshold, color="black", linestyle="--", linewidth=0.8)
        ax.set_title(f"{cls} {classnames[cls]}"[:28], fontsize=7)
        ax.tick_params(labelsize=6)
    more = f" (first {len(shown)} of {len(classnames)} classes)" if len(shown) < len(classnames) else ""
    fig.suptitle(f"confidence per class: kept (green) / dropped (red){more}", fontsize=8)
    return _save(plt, fig, path)


def write_histograms(
    scores: Sequence[SampleScore],
    classnames: Sequence[str],
    out_dir: Path,
    *,
    threshold: float | None,
    title: str,
) -> list[Path]:
    """``HIST_PNG`` (all classes, kept vs dropped) and ``BY_CLASS_PNG`` (a grid of classes)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        _overall_hist(scores, out_dir / HIST_PNG, threshold, title),
        _class_grid(scores, classnames, out_dir / BY_CLASS_PNG, threshold),
    ]


def write_sheets(
    images: dict[str, Image.Image],
    most: dict[int, list[str]],
    least: dict[int, list[str]],
    classnames: Sequence[str],
    out_dir: Path,
    *,
    max_classes: int,
    per_row: int,
) -> list[Path]:
    """``MOST_CONFIDENT_PNG`` and ``LEAST_CONFIDENT_PNG``: a row of thumbnails per class."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in ((MOST_CONFIDENT_PNG, most), (LEAST_CONFIDENT_PNG, least)):
        rows = [
            (f"{cls} {classnames[cls]}", [images[k] for k in table[cls] if k in images])
            for cls in sorted(table)[:max_classes]
        ]
        rows = [r for r in rows if r[1]]
        if not rows:
            continue
        path = out_dir / name
        contact_sheet(rows, per_row=per_row).save(path)
        written.append(path)
    return written


def sheet_keys(
    scores: Sequence[SampleScore], per_class: int, max_classes: int
) -> tuple[dict[int, list[str]], dict[int, list[str]], set[str]]:
    """:func:`extreme_keys`, and the keys whose images the contact sheets of the first ``max_classes`` show."""
    most, least = extreme_keys(scores, per_class)
    shown = set(sorted(set(most))[:max_classes])
    want = {k for table in (most, least) for c, keys in table.items() if c in shown for k in keys}
    return most, least, want
