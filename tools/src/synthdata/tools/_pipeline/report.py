"""The static HTML report of a pipeline run: ``R/report.html`` plus its PNG figures in ``R/report/``.

It reads only files on disk (the stage markers, ``config.json``, ``results.jsonl``, the prompts, the
shards, the filter's ``report.json`` and the tuner's ``train_log.jsonl``), so it can be rebuilt from a
finished run at any time. The page is a header and one section per stage's outputs (accuracy, training,
filter, contact sheets, prompts, timings), each a function of the run's files that returns its HTML and the
facts it shows; :func:`render_report` puts them together. Every section is optional: a missing input gives
a short note, not an error. All text from the run (class names, prompts) is HTML-escaped; image links are
relative, so the run directory can be moved or served as is.
"""

from __future__ import annotations

import html
import io
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from synthdata.filter import layout as filter_layout
from synthdata.tools._pipeline import layout
from synthdata.tools._pipeline._io import atomic_write_bytes
from synthdata.tools._pipeline.results import latest_results
from synthdata.tools._pipeline.stages import read_marker

log = logging.getLogger(__name__)

#: Classes per contact-sheet PNG, and at most this many classes shown in sheets and per-class tables.
SHEET_CLASSES = 25
MAX_REPORT_CLASSES = 100
THUMBS_PER_CLASS = 8

# Names of files inside the tune stage's output that the report reads. They belong to synthdata.tune
# (synthdata.tune.run.TRAIN_LOG_FILE and CONFUSION_FILE), which should export them from a module that does
# not import torch; until it does, importing them would load torch just to rebuild a report, so they are
# named here once (tests/pipeline/test_report.py checks they equal tune's).
TUNE_TRAIN_LOG = "train_log.jsonl"
TUNE_CONFUSION = "confusion.png"

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f3f3f3; } td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.warn { background: #fff4d6; border: 1px solid #e0b44c; padding: .6em 1em; }
.note { color: #666; } figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: .9em; } code { background: #f5f5f5; padding: 0 3px; }
"""


# Marks every image that decoded (data-rendered) and counts them on <body>, so a headless browser's
# --dump-dom shows whether the figures rendered; the page works the same without scripts.
_CHECK_SCRIPT = """<script>
window.addEventListener("load", function () {
  var ok = 0, imgs = document.images;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; imgs[i].setAttribute("data-rendered", "1"); }
  }
  document.body.setAttribute("data-images", String(imgs.length));
  document.body.setAttribute("data-images-rendered", String(ok));
});
</script>"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pct(x: Any) -> str:
    return "–" if x is None else f"{100 * float(x):.2f}%"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError:
        return rows
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            rows.append(obj)
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[bool] | None = None) -> str:
    numeric = numeric or [False] * len(header)
    out = ["<table>", "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        cells = "".join(
            f'<td class="n">{_e(v)}</td>' if num else f"<td>{_e(v)}</td>" for v, num in zip(row, numeric, strict=False)
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def _figure(rel: str, caption: str) -> str:
    return f'<figure><img src="{_e(rel)}" alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>'


# ----------------------------------------------------------------------------------------- figures
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _write_png(path: Path, save: Callable[[io.BytesIO], Any]) -> Path:
    """Write what ``save`` puts into a buffer as ``path``, atomically."""
    buf = io.BytesIO()
    save(buf)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _save(plt: Any, fig: Any, path: Path) -> Path:
    """Write ``fig`` as ``path`` (PNG, trimmed to its contents) and close it."""
    _write_png(path, lambda buf: fig.savefig(buf, format="png", dpi=100, bbox_inches="tight"))
    plt.close(fig)
    return path


def plot_timings(timings: Sequence[tuple[str, float]], path: Path) -> Path:
    """Horizontal bars, one per stage, in seconds."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(timings) + 1))
    names = [n for n, _ in timings][::-1]
    secs = [s for _, s in timings][::-1]
    ax.barh(names, secs, color="#4c78a8")
    for i, s in enumerate(secs):
        ax.text(s, i, f" {s:.1f} s", va="center", fontsize=8)
    ax.set_xlabel("seconds")
    ax.set_title("time per stage")
    ax.set_xlim(0, max([*secs, 0.001]) * 1.25)
    return _save(plt, fig, path)


def _plot_accuracy_curve(ax: Any, epochs: list[Any], rows: Sequence[dict[str, Any]]) -> None:
    """Train top-1 on a twin axis of ``ax``, its legend merged with the loss lines'."""
    acc = [r.get("train_top1") for r in rows]
    handles, labels = ax.get_legend_handles_labels()
    if any(a is not None for a in acc):
        twin = ax.twinx()
        twin.plot(epochs, [a if a is not None else math.nan for a in acc], "-s", color="#54a24b", ms=3,
                  label="train top-1")
        twin.set_ylabel("train top-1")
        twin.set_ylim(0, 1)
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if handles:
        ax.legend(handles, labels, loc="upper right", fontsize=8)


def plot_training(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Loss (and the synthetic/real parts when present) and train top-1 per epoch; the learning rate."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(rows)]
    total = [r.get("loss") for r in rows]
    for key, style in (("loss", "-o"), ("syn_loss", "--"), ("real_loss", ":")):
        values = [r.get(key) for r in rows]
        if key != "loss" and values == total:
            continue  # no real-data part: the synthetic loss is the loss, one line says it
        if any(isinstance(v, int | float) and v for v in values):
            axes[0].plot(epochs, [v if v is not None else math.nan for v in values], style, label=key, ms=3)
    _plot_accuracy_curve(axes[0], epochs, rows)
    axes[0].set_title("training loss")
    axes[1].plot(epochs, [r.get("lr") or 0.0 for r in rows], "-o", ms=3, color="#f58518")
    axes[1].set_xlabel("epoch")
    axes[1].set_title("learning rate (last step of each epoch)")
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return _save(plt, fig, path)


def _class_bars(plt: Any, n: int, height: float) -> tuple[Any, Any, list[int]]:
    """A figure wide enough for ``n`` bars (or groups of bars), one per class."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.22 * n + 2), height))
    return fig, ax, list(range(n))


def plot_filter(classes: Sequence[dict[str, Any]], path: Path) -> Path:
    """Stacked bars per class: kept, dropped and unreadable samples."""
    plt = _pyplot()
    classes = list(classes)[:MAX_REPORT_CLASSES]
    fig, ax, x = _class_bars(plt, len(classes), 3.4)
    kept = [c.get("kept", 0) for c in classes]
    dropped = [c.get("dropped", 0) for c in classes]
    bad = [c.get("unreadable", 0) for c in classes]
    ax.bar(x, kept, color="#54a24b", label="kept")
    ax.bar(x, dropped, bottom=kept, color="#e45756", label="dropped")
    ax.bar(x, bad, bottom=[k + d for k, d in zip(kept, dropped, strict=True)], color="#999", label="unreadable")
    ax.set_xticks(x)
    ax.set_xticklabels([str(c.get("name", c.get("index", i)))[:18] for i, c in enumerate(classes)],
                       rotation=90, fontsize=7)
    ax.set_ylabel("samples")
    ax.set_title("filter: kept and dropped per class")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over them
    return _save(plt, fig, path)


def plot_accuracy(classnames: Sequence[str], zeroshot: Sequence[float | None], tuned: Sequence[float | None],
                  path: Path) -> Path:
    """Per-class test accuracy, zero-shot against tuned."""
    plt = _pyplot()
    n = min(len(classnames), MAX_REPORT_CLASSES)
    fig, ax, x = _class_bars(plt, n, 3.2)
    w = 0.4
    ax.bar([i - w / 2 for i in x], [v or 0.0 for v in zeroshot[:n]], w, color="#9ecae9", label="zero-shot")
    ax.bar([i + w / 2 for i in x], [v or 0.0 for v in tuned[:n]], w, color="#4c78a8", label="tuned")
    ax.set_xticks(x)
    ax.set_xticklabels([c[:18] for c in classnames[:n]], rotation=90, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("top-1")
    ax.set_title("per-class test accuracy")
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def _write_sheets(
    rows: Sequence[tuple[str, list[Any]]], out_dir: Path, stem: str, per_class: int
) -> list[Path]:
    """``stem-00.png``, ``stem-01.png``, ...: contact sheets of ``SHEET_CLASSES`` rows each."""
    from synthdata.shards import contact_sheet

    paths = []
    for part, start in enumerate(range(0, len(rows), SHEET_CLASSES)):
        sheet = contact_sheet(rows[start : start + SHEET_CLASSES], thumb=64, per_row=per_class)
        path = out_dir / f"{stem}-{part:02d}.png"
        paths.append(_write_png(path, lambda buf, sheet=sheet: sheet.save(buf, format="PNG")))
    return paths


def write_contact_sheets(shard_dir: Path, classnames: Sequence[str], out_dir: Path, stem: str,
                         per_class: int = THUMBS_PER_CLASS) -> list[Path]:
    """Per-class contact sheets (a row per class) of the first images of each class in ``shard_dir``."""
    from synthdata.shards import iter_samples, list_shards

    if not list_shards(shard_dir):
        return []
    wanted = set(range(min(len(classnames), MAX_REPORT_CLASSES)))
    buckets: dict[int, list[Any]] = {}
    for sample in iter_samples(shard_dir, decode=True):
        if sample.cls not in wanted:
            continue
        bucket = buckets.setdefault(sample.cls, [])
        if len(bucket) < per_class:
            bucket.append(sample.image)
        if len(buckets) == len(wanted) and all(len(b) >= per_class for b in buckets.values()):
            break
    rows = [(f"{c} {classnames[c]}", buckets[c]) for c in sorted(buckets)]
    return _write_sheets(rows, out_dir, stem, per_class)


def write_folder_sheets(root: Path, classnames: Sequence[str], out_dir: Path, stem: str,
                        per_class: int = THUMBS_PER_CLASS) -> list[Path]:
    """Per-class contact sheets of an ImageFolder whose sorted folder names give the class indices."""
    from PIL import Image

    if not root.is_dir():
        return []
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    rows = []
    for c, folder in enumerate(folders[: min(len(classnames), MAX_REPORT_CLASSES)]):
        images = []
        for f in sorted(folder.iterdir())[:per_class]:
            try:
                with Image.open(f) as im:
                    images.append(im.convert("RGB"))
            except OSError:
                continue
        rows.append((f"{c} {classnames[c]}", images))
    return _write_sheets(rows, out_dir, stem, per_class)


# ----------------------------------------------------------------------------------------- the page
@dataclass(frozen=True, slots=True)
class Section:
    """A part of the page: its HTML and the facts it shows (counts, numbers, the figures it links)."""

    html: str
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunFiles:
    """What every section starts from: the run directory, its configuration and class names."""

    run_dir: Path
    config: dict[str, Any]
    classnames: list[str]

    @classmethod
    def read(cls, run_dir: str | Path) -> RunFiles:
        run_dir = Path(run_dir)
        doc = _read_json(run_dir / layout.CONFIG) or {}
        cfg = doc.get("config", {}) if isinstance(doc, dict) else {}
        classnames = list(doc.get("classnames") or []) if isinstance(doc, dict) else []
        return cls(run_dir, cfg, classnames)

    @property
    def fig_dir(self) -> Path:
        return self.run_dir / layout.REPORT_DIR

    def figure(self, path: Path, caption: str) -> str:
        """A figure for a PNG the report wrote into ``fig_dir``."""
        return _figure(f"{layout.REPORT_DIR}/{path.name}", caption)


_SMOKE_WARNING = (
    '<p class="warn" id="smoke-warning"><b>Smoke run.</b> Tiny randomly initialised models of the real '
    "architectures: the images are noise, the filter and classifier are untrained, and without "
    "<code>--eval</code> the test set is a procedural stand-in. The numbers below check the plumbing; "
    "they say nothing about the method.</p>"
)


def header_section(run: RunFiles) -> Section:
    """The page's head, title, the smoke-run warning and where the configuration and results are."""
    cfg = run.config
    title = cfg.get("dataset") or Path(str(cfg.get("classes_file") or "classes")).stem
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>synth-pipeline report: {_e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<h1 id="top">synth-pipeline: {_e(title)}</h1>',
    ]
    if cfg.get("smoke"):
        parts.append(_SMOKE_WARNING)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    parts.append(
        f'<p class="note">{len(run.classnames)} classes; written {_e(now)}; full configuration in '
        f'<a href="{layout.CONFIG}">{layout.CONFIG}</a>, results in '
        f'<a href="{layout.RESULTS}">{layout.RESULTS}</a>.</p>'
    )
    facts = {"title": title, "smoke": bool(cfg.get("smoke")), "classes": len(run.classnames)}
    return Section("\n".join(parts), facts)


def _accuracy_row(r: dict[str, Any], zs: dict[str, Any] | None) -> list[Any]:
    """A results line as the accuracy table shows it, with its top-1 against zero-shot's in points."""
    base = zs.get("top1") if zs else None
    no_delta = base is None or r.get("top1") is None or r is zs
    delta = "" if no_delta else f"{100 * (float(r['top1']) - float(base)):+.2f}"
    method = str(r.get("method", "?"))
    if r.get("alpha") is not None:
        method += f" (best α = {r['alpha']:g})"
    return [method, r.get("setting", ""), r.get("model", ""), _pct(r.get("top1")),
            _pct(r.get("mean_per_class")), delta, r.get("test_images", "")]


def accuracy_section(run: RunFiles) -> Section:
    """The tune and eval stages' results: each classifier's test accuracy against zero-shot CLIP."""
    parts = ['<h2 id="accuracy">Accuracy against zero-shot CLIP</h2>']
    results = latest_results(run.run_dir / layout.RESULTS)  # the file keeps every run's lines
    if not results:
        parts.append('<p class="note">No results yet (the tune stage has not finished).</p>')
        return Section("\n".join(parts), {"rows": []})
    zs = next((r for r in results if r.get("method") == "zero-shot"), None)
    rows = [_accuracy_row(r, zs) for r in results]
    parts.append(_table(["classifier", "setting", "CLIP", "top-1", "mean per class", "Δ top-1 (points)",
                         "test images"], rows, [False, False, False, True, True, True, True]))
    tuned = next((r for r in results if r.get("method") == "classifier-tuning"), None)
    figures = []
    if zs and tuned and zs.get("per_class") and tuned.get("per_class") and run.classnames:
        path = run.fig_dir / "accuracy_per_class.png"
        p = plot_accuracy(run.classnames, zs["per_class"], tuned["per_class"], path)
        parts.append(run.figure(p, "per-class test accuracy, zero-shot vs tuned"))
        figures.append(p.name)
    return Section("\n".join(parts), {"rows": rows, "figures": figures})


def training_section(run: RunFiles) -> Section:
    """The tune stage's training log (loss, train top-1, learning rate per epoch) and confusion matrix."""
    parts = ['<h2 id="training">Training curves</h2>']
    tune_dir = run.run_dir / layout.TUNE_DIR
    train_log = _read_jsonl(tune_dir / TUNE_TRAIN_LOG)
    facts: dict[str, Any] = {"epochs": len(train_log), "figures": []}
    if train_log:
        p = plot_training(train_log, run.fig_dir / "training.png")
        parts.append(run.figure(p, "Classifier Tuning: loss, train top-1 and lr per epoch"))
        last = train_log[-1]
        final_loss = round(float(last.get("loss", math.nan)), 4)
        parts.append(f'<p class="note">{len(train_log)} epochs, {_e(last.get("step", "?"))} steps; final loss '
                     f"{_e(final_loss)}.</p>")
        facts.update(steps=last.get("step"), final_loss=final_loss, figures=[p.name])
    else:
        parts.append('<p class="note">No training log.</p>')
    if (tune_dir / TUNE_CONFUSION).is_file():
        caption = "confusion matrix of the tuned head on the test set"
        parts.append(_figure(f"{layout.TUNE_DIR}/{TUNE_CONFUSION}", caption))
        facts["figures"].append(TUNE_CONFUSION)
    return Section("\n".join(parts), facts)


def _filter_class_rows(classes: Sequence[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for c in classes[:MAX_REPORT_CLASSES]:
        conf = c.get("mean_confidence")
        instead = ", ".join(f"{k} ×{v}" for k, v in list((c.get("chosen_instead") or {}).items())[:3])
        rows.append([c.get("index"), c.get("name"), c.get("scored"), c.get("kept"), c.get("dropped"),
                     "–" if conf is None else f"{conf:.3f}", instead])
    return rows


def _filter_figures(run: RunFiles, freport: dict[str, Any]) -> list[str]:
    """The filter's own report PNGs that its ``report.json`` lists and the run directory still holds."""
    listed = {Path(str(f)).name for f in (freport.get("files") or {}).values()}
    folder = layout.FILTER_REPORT_DIR
    return [f"{folder}/{name}" for name in sorted(filter_layout.REPORT_PNGS)
            if name in listed and (run.run_dir / folder / name).exists()]


def filter_section(run: RunFiles) -> Section:
    """The filter stage's ``report.json``: totals, settings, per-class counts, and its own figures."""
    parts = ['<h2 id="filter">Filter statistics</h2>']
    freport = _read_json(run.run_dir / layout.FILTER_REPORT_DIR / filter_layout.REPORT_FILE)
    if not isinstance(freport, dict):
        parts.append('<p class="note">No filter report.</p>')
        return Section("\n".join(parts), {})
    totals, settings = freport.get("totals", {}), freport.get("settings", {})
    summary = [totals.get("scored"), totals.get("kept"), totals.get("dropped"), totals.get("unreadable"),
               settings.get("rule"), settings.get("threshold_used"), settings.get("model_artifact")]
    parts.append(_table(["scored", "kept", "dropped", "unreadable", "rule", "threshold", "CLIP"], [summary],
                        [True, True, True, True, False, True, False]))
    figures = []
    classes = freport.get("classes") or []
    if classes:
        p = plot_filter(classes, run.fig_dir / "filter_per_class.png")
        parts.append(run.figure(p, "filter: kept and dropped samples per class"))
        figures.append(p.name)
        parts.append(_table(["#", "class", "scored", "kept", "dropped", "mean confidence",
                             "CLIP's top-1 for dropped"], _filter_class_rows(classes),
                            [True, False, True, True, True, True, False]))
    for rel in _filter_figures(run, freport):
        parts.append(_figure(rel, f"filter report: {Path(rel).stem}"))
        figures.append(Path(rel).name)
    return Section("\n".join(parts), {"summary": summary, "classes": len(classes), "figures": figures})


def _shard_sheets(run: RunFiles, shard_dir: Path, stem: str) -> list[Path]:
    try:
        return write_contact_sheets(shard_dir, run.classnames, run.fig_dir, stem)
    except Exception as exc:  # a damaged shard must not cost the rest of the report
        log.warning("contact sheet of %s failed: %s", shard_dir, exc)
        return []


def sheets_section(run: RunFiles) -> Section:
    """Per-class contact sheets: the few-shot real images, the generated images, those the filter kept."""
    parts = ['<h2 id="sheets">Per-class contact sheets</h2>']
    groups: list[tuple[str, list[Path]]] = []
    if run.classnames:  # the sheets' rows are labelled with the class names
        few_shot = run.run_dir / layout.FEW_SHOT_DIR
        real = write_folder_sheets(few_shot, run.classnames, run.fig_dir, "sheet_real")
        groups = [
            ("real few-shot images (Real Guidance references)", real),
            ("generated images", _shard_sheets(run, run.run_dir / layout.GENERATED_DIR, "sheet_generated")),
            ("kept by the filter", _shard_sheets(run, run.run_dir / layout.FILTER_DIR, "sheet_kept")),
        ]
    figures = []
    for caption, paths in groups:
        for i, p in enumerate(paths):
            parts.append(run.figure(p, f"{caption} ({i + 1}/{len(paths)})"))
            figures.append(p.name)
    if not figures:
        parts.append('<p class="note">No images.</p>')
    return Section("\n".join(parts), {"figures": figures})


def prompts_section(run: RunFiles) -> Section:
    """The prompts stage: the first prompt of each class (no section without a prompts file)."""
    prompts = _read_jsonl(run.run_dir / layout.PROMPTS)
    if not prompts:
        return Section("", {"prompts": 0})
    seen: dict[int, dict[str, Any]] = {}
    for p in prompts:
        seen.setdefault(int(p.get("class_index", -1)), p)
    first = sorted(seen.items())[:MAX_REPORT_CLASSES]
    rows = [[c, p.get("class_name"), p.get("prompt"), p.get("source")] for c, p in first]
    parts = ['<h2 id="prompts">Prompts (first per class)</h2>', f'<p class="note">{len(prompts)} prompts.</p>',
             _table(["#", "class", "prompt", "source"], rows, [True, False, False, False])]
    return Section("\n".join(parts), {"prompts": len(prompts), "rows": rows})


#: Per stage, the marker facts worth a column in the timings table.
_FACTS = {
    "prompts": ("method", "prompts"),
    "fewshot": ("shots", "source_kind"),
    "generate": ("images", "images_resumed", "images_per_second", "size", "base_respacing"),
    "filter": ("scored", "kept", "rule"),
    "eval": ("images",),
    "tune": ("steps",),
}


def _fact(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _stage_timings(run_dir: Path, stages: Sequence[str]) -> list[tuple[str, float, str, str, str]]:
    rows = []
    for name in stages:
        marker = read_marker(run_dir, name)
        if marker is not None:
            facts = ", ".join(
                f"{k} {_fact(marker.info[k])}" for k in _FACTS.get(name, ()) if marker.info.get(k) is not None
            )
            if marker.info.get("device"):
                facts += f"{', ' if facts else ''}on {marker.info['device']}"
            started, finished = (t[:19].replace("T", " ") for t in (marker.started, marker.finished))
            rows.append((name, float(marker.seconds), started, finished, facts))
    return rows


def timings_section(run: RunFiles, stages: Sequence[str]) -> Section:
    """Every finished stage's wall-clock time and what it did, from the stage markers."""
    parts = ['<h2 id="timings">Time per stage</h2>']
    timings = _stage_timings(run.run_dir, [s for s in stages if s != "report"])
    if not timings:
        return Section("\n".join(parts), {"seconds": {}})
    p = plot_timings([(t[0], t[1]) for t in timings], run.fig_dir / "timings.png")
    parts.append(run.figure(p, "wall-clock seconds per stage"))
    total = sum(t[1] for t in timings)
    parts.append(_table(["stage", "seconds", "started", "finished", "what it did"],
                        [[n, f"{s:.1f}", a, b, f] for n, s, a, b, f in timings]
                        + [["total", f"{total:.1f}", "", "", ""]],
                        [False, True, True, True, False]))  # right-aligned, unwrapped timestamps
    parts.append('<p class="note">Times of the run that produced each stage; a stage skipped on a rerun '
                 "keeps the time it took when it ran.</p>")
    facts = {"seconds": {t[0]: t[1] for t in timings}, "total": total, "figures": [p.name]}
    return Section("\n".join(parts), facts)


def report_sections(run_dir: str | Path, stages: Sequence[str]) -> list[Section]:
    """The page's sections in order, writing their figures into ``run_dir/report/``."""
    run = RunFiles.read(run_dir)
    run.fig_dir.mkdir(parents=True, exist_ok=True)
    return [
        header_section(run),
        accuracy_section(run),
        training_section(run),
        filter_section(run),
        sheets_section(run),
        prompts_section(run),
        timings_section(run, stages),
    ]


def render_report(run_dir: str | Path, stages: Sequence[str]) -> Path:
    """Write ``run_dir/report.html`` and ``run_dir/report/*.png`` from the run's files; returns the HTML path."""
    parts = [s.html for s in report_sections(run_dir, stages) if s.html]
    parts += [_CHECK_SCRIPT, "</body></html>"]
    path = Path(run_dir) / layout.REPORT_HTML
    atomic_write_bytes(path, ("\n".join(parts) + "\n").encode("utf-8"))
    return path
