"""The whole filter job: score, select, write filtered shards, scores and report."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tarfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from synthdata.clip import ClipBundle, load_clip
from synthdata.filter._cache import ScoreCache
from synthdata.filter._report import class_table, extreme_keys, write_histograms, write_sheets
from synthdata.filter._scoring import check_classes, score_shards, shard_index
from synthdata.filter._selection import check_rule, select
from synthdata.filter._types import SampleScore, ScoreResult
from synthdata.filter.layout import CACHE_DIR, PRODUCER, REPORT_DIR, REPORT_FILE, SCORES_FILE, SHARD_PREFIX
from synthdata.shards import (
    DATASET_JSON,
    CorruptShardError,
    DatasetInfo,
    OutputDirError,
    Sample,
    ShardWriter,
    list_shards,
    read_dataset_json,
    write_dataset_json,
)
from synthdata.shards.atomic import atomic_open, atomic_write_json, removed_on_failure
from synthdata.shards.encoding import decode_image
from synthdata.shards.errors import DatasetInfoError
from synthdata.shards.reader import iter_tar_groups, parse_sample

log = logging.getLogger(__name__)


@dataclass(kw_only=True, slots=True)
class FilterConfig:
    """Settings of a filter run; the defaults are the paper's (OpenAI RN50, threshold 1/C)."""

    model: str = "RN50"
    pretrained: str = "openai"
    device: str = "cpu"
    precision: str = "fp32"
    cache_dir: str | None = None
    batch_size: int = 64
    num_workers: int = 1
    rule: str = "paper"
    per_class: int | None = None
    threshold: float | None = None  # None: 1/C for "paper" and "threshold"
    seed: int = 0
    shard_size: int = 1000
    report: bool = True
    sheet_per_class: int = 8
    max_sheet_classes: int = 100
    resume: bool = True  # reuse the score checkpoints of an interrupted run into the same --out
    progress: bool = False


@dataclass(slots=True)
class FilterResult:
    """What a run did: counts, where things went, and the timing."""

    out_dir: Path
    scored: int
    kept: int
    unreadable: int
    shards: int
    seconds: float
    scoring_seconds: float
    scored_now: int = 0
    shards_resumed: int = 0
    files: dict[str, str] = field(default_factory=dict)


def check_out_dir(source: Path, out: Path) -> bool:
    """Refuse an ``out`` a filter run must not write to; True if it holds a previous synth-filter output.

    ``out`` may be new, empty, or a previous (possibly interrupted) synth-filter output; never the input
    directory itself, a file, or a non-empty directory that a filter run did not write. Changes nothing.
    """
    if out.exists() and source.resolve() == out.resolve():
        raise OutputDirError(f"--out {out} is the input directory; choose another")
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"--out {out} exists and is not a directory; choose another")
    if not out.exists() or not any(out.iterdir()):
        return False
    try:
        producer = read_dataset_json(out).producer
    except DatasetInfoError:
        producer = None
    ours = {SCORES_FILE, REPORT_FILE, REPORT_DIR, DATASET_JSON}
    foreign = [
        p.name
        for p in out.iterdir()
        if p.name not in ours and not p.name.startswith((f"{SHARD_PREFIX}-", f".{SHARD_PREFIX}-", "."))
    ]
    if (producer is not None and producer != PRODUCER) or foreign:
        raise OutputDirError(
            f"--out {out} is not empty and is not a synth-filter output "
            f"({', '.join(sorted(foreign)[:3]) or DATASET_JSON}); choose an empty or new directory"
        )
    return True


def _clear_previous(out: Path, *, keep_checkpoints: bool) -> None:
    """Remove a previous output's files, except its score checkpoints when ``keep_checkpoints``."""
    log.info("%s holds a previous synth-filter output; redoing it", out)
    with contextlib.suppress(FileNotFoundError):
        (out / DATASET_JSON).unlink()  # first: without it the directory is no longer a complete dataset
    for p in out.iterdir():
        if p.name == CACHE_DIR and keep_checkpoints:
            continue
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()


def prepare_out_dir(source: Path, out: Path, *, keep_checkpoints: bool = True) -> None:
    """Make ``out`` ready: empty, or a previous (possibly interrupted) synth-filter output.

    A previous output's files are removed except its score checkpoints (``.filter-scores/``, unless
    ``keep_checkpoints`` is false), so a rerun rescores only what the checkpoints do not cover and redoes the
    rest. Refuses what :func:`check_out_dir` refuses.
    """
    if check_out_dir(source, out):
        _clear_previous(out, keep_checkpoints=keep_checkpoints)


def _tag(pretrained: str | None) -> str:
    return (
        "none" if pretrained is None or str(pretrained).lower() in ("none", "random", "") else str(pretrained)
    )


def _artifact(model: str, pretrained: str | None) -> str:
    return f"clip.{model}.{Path(_tag(pretrained)).name}"


def _fingerprint(
    cfg: FilterConfig, bundle: ClipBundle | None, classnames: Sequence[str], templates: Sequence[str]
) -> dict[str, Any]:
    """What the scores depend on; checkpoints made with anything else are discarded."""
    if bundle is not None:
        model, weights = bundle.name, bundle.pretrained
        dtype, device = str(bundle.dtype).removeprefix("torch."), bundle.device.type
    else:
        model, weights = cfg.model, _tag(cfg.pretrained)
        dtype, device = cfg.precision, str(cfg.device).split(":")[0]
    weights_file: dict[str, Any] = {}
    if weights != "none" and os.path.isfile(weights):
        stat = os.stat(weights)
        weights_file = {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return {
        "model": model,
        "pretrained": weights,
        "weights_file": weights_file,
        "dtype": {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}.get(dtype, dtype),
        "device": device,
        "classnames": list(classnames),
        "templates": list(templates),
    }


def _write_scores(path: Path, scores: list[SampleScore], classnames: Sequence[str]) -> None:
    with atomic_open(path, "w") as fh:
        for s in scores:
            fh.write(json.dumps(s.to_json(classnames), sort_keys=True, allow_nan=False) + "\n")


def _filter_meta(s: SampleScore, rule: str, artifact: str) -> dict[str, Any]:
    return {
        "confidence": s.confidence,
        "top1": s.top1,
        "top1_confidence": s.top1_confidence,
        "clip_score": s.clip_score,
        "rule": rule,
        "model": artifact,
    }


def _copy_kept(
    source: Path,
    out: Path,
    scores: dict[str, SampleScore],
    kept: set[str],
    want_images: set[str],
    cfg: FilterConfig,
    artifact: str,
) -> tuple[int, int, dict[str, Any], list[str]]:
    """Second pass: copy the kept samples' original image bytes (no re-encoding) into new shards.

    Also decodes the few images the contact sheets need. Per-sample problems skip that sample only.
    """
    images: dict[str, Any] = {}
    problems: list[str] = []
    written = 0
    with ShardWriter(out, prefix=SHARD_PREFIX, max_count=cfg.shard_size) as writer:
        for shard in list_shards(source):
            try:
                for key, members in iter_tar_groups(shard):
                    if key not in kept and key not in want_images:
                        continue
                    try:
                        sample = parse_sample(key, members, shard.name, decode=False)
                    except CorruptShardError as exc:
                        problems.append(str(exc))
                        continue
                    if key in want_images:
                        with contextlib.suppress(Exception):
                            images[key] = decode_image(sample.image)
                    if key in kept:
                        meta = dict(sample.meta)
                        meta["filter"] = _filter_meta(scores[key], cfg.rule, artifact)
                        writer.write(Sample(key, sample.image, sample.cls, meta, dict(sample.extra)))
                        written += 1
            except (tarfile.TarError, CorruptShardError, OSError, EOFError) as exc:
                problems.append(f"{shard.name}: unreadable tar ({exc})")
        shards = len(writer.close())
    return written, shards, images, problems


def filter_shards(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    classnames: Sequence[str],
    templates: Sequence[str],
    config: FilterConfig | None = None,
    *,
    bundle: ClipBundle | None = None,
    source_note: dict[str, Any] | None = None,
) -> FilterResult:
    """Score the shards in ``source`` with CLIP, select per ``config``, and write ``out``.

    ``out`` receives filtered shards (original image bytes, ``meta["filter"]`` added), ``dataset.json``
    (same classes; config = the source's config plus ``filter`` settings), ``scores.jsonl`` (one line per
    input sample, unreadable ones with null scores and an ``error``), ``report.json`` and ``report/*.png``.
    Pass ``bundle`` to reuse a loaded model. ``dataset.json`` is written last: its presence marks a
    complete output; a rerun into the same directory redoes the job (the result is deterministic).
    """
    cfg = config or FilterConfig()
    started = time.perf_counter()
    source, out = Path(source), Path(out)
    classnames = list(classnames)
    # Every input check before anything is written: a bad input leaves --out as it was.
    check_rule(cfg.rule, cfg.per_class, cfg.threshold)
    if not list_shards(source):
        raise FileNotFoundError(f"{source} holds no complete shards (no *.idx.json sidecars)")
    check_classes(source, classnames, shard_index(source))
    previous = check_out_dir(source, out)
    # A run that fails before writing any file leaves no directory it created behind (score checkpoints are
    # files, so an interrupted scoring run keeps them for the rerun).
    with removed_on_failure(out):
        return _filter(source, out, classnames, templates, cfg, bundle, source_note, previous, started)


def _filter(
    source: Path,
    out: Path,
    classnames: list[str],
    templates: Sequence[str],
    cfg: FilterConfig,
    bundle: ClipBundle | None,
    source_note: dict[str, Any] | None,
    previous: bool,
    started: float,
) -> FilterResult:
    """:func:`filter_shards` after its checks: score (resuming from checkpoints), select, write."""
    loaded: list[ClipBundle] = [bundle] if bundle is not None else []

    def get_bundle() -> ClipBundle:
        if not loaded:
            loaded.append(
                load_clip(
                    cfg.model,
                    cfg.pretrained,
                    device=cfg.device,
                    precision=cfg.precision,
                    cache_dir=cfg.cache_dir,
                )
            )
        return loaded[0]

    cache = ScoreCache(out / CACHE_DIR, _fingerprint(cfg, bundle, classnames, templates), reuse=cfg.resume)
    result: ScoreResult = score_shards(
        source,
        bundle if bundle is not None else get_bundle,
        classnames,
        templates,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        cache=cache,
        progress=cfg.progress,
    )
    if previous:  # only now: until the new scores are in, a previous complete output stays as it was
        _clear_previous(out, keep_checkpoints=True)
    artifact = loaded[0].artifact if loaded else _artifact(cfg.model, cfg.pretrained)
    kept = select(
        result.scores,
        rule=cfg.rule,
        num_classes=len(classnames),
        per_class=cfg.per_class,
        threshold=cfg.threshold,
        seed=cfg.seed,
    )
    for s in result.scores:
        s.kept = s.key in kept
    by_key = {s.key: s for s in result.scores}
    most, least = extreme_keys(result.scores, cfg.sheet_per_class) if cfg.report else ({}, {})
    sheet_classes = set(sorted(set(most))[: cfg.max_sheet_classes])
    want = {k for table in (most, least) for c, keys in table.items() if c in sheet_classes for k in keys}
    written, shards, images, notes = _copy_kept(source, out, by_key, kept, want, cfg, artifact)
    threshold = cfg.threshold if cfg.threshold is not None else 1.0 / len(classnames)
    files = {"scores": str(out / SCORES_FILE)}
    all_scores = sorted(result.scores + result.corrupt, key=lambda s: s.key)
    _write_scores(out / SCORES_FILE, all_scores, classnames)
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("cache_dir", "progress", "resume")}
    settings.update(
        model_artifact=artifact,
        threshold_used=threshold if cfg.rule in ("paper", "threshold") else None,
        templates=list(templates),
        num_classes=len(classnames),
    )
    if cfg.report:
        report_dir = out / REPORT_DIR
        title = f"{artifact}, rule {cfg.rule}, {len(kept)} of {len(result.scores)} kept"
        pngs = write_histograms(
            result.scores,
            classnames,
            report_dir,
            threshold=settings["threshold_used"],
            title=title,
        )
        pngs += write_sheets(
            images,
            most,
            least,
            classnames,
            report_dir,
            max_classes=cfg.max_sheet_classes,
            per_row=cfg.sheet_per_class,
        )
        files.update({p.stem: str(p) for p in pngs})
    seconds = time.perf_counter() - started
    report = {
        "source": str(source.resolve()),
        "out": str(out.resolve()),
        "settings": settings,
        "totals": {
            "samples": len(all_scores),
            "scored": len(result.scores),
            "kept": written,
            "dropped": len(result.scores) - written,
            "unreadable": len(result.corrupt),
            "shards_written": shards,
        },
        "classes": class_table(result.scores, result.corrupt, classnames),
        "unreadable": [{"key": s.key, "shard": s.shard, "error": s.error} for s in result.corrupt[:1000]],
        "reader_messages": (result.error_messages + notes)[:100],
        "timing": {
            "total_seconds": seconds,
            "scoring_seconds": result.seconds,
            "images_scored_now": result.scored_now,
            "shards_from_checkpoints": result.shards_resumed,
            "text_seconds": result.text_seconds,
            "images_per_second": result.images_per_second,
        },
        "files": files,
    }
    atomic_write_json(out / REPORT_FILE, report)
    files["report"] = str(out / REPORT_FILE)
    try:
        src_info = read_dataset_json(source)
        src_config, src_name, src_producer = dict(src_info.config), src_info.name, src_info.producer
    except DatasetInfoError:
        src_config, src_name, src_producer = {}, "", ""
    src_config.pop("filter", None)
    filter_config = {
        **settings,
        "source": str(source.resolve()),
        "source_name": src_name,
        "source_producer": src_producer,
        **(source_note or {}),
    }
    write_dataset_json(
        out,
        DatasetInfo(
            classes=classnames,
            name=src_name or "filtered",
            producer=PRODUCER,
            config={**src_config, "filter": filter_config},
        ),
    )
    return FilterResult(
        out_dir=out,
        scored=len(result.scores),
        kept=written,
        unreadable=len(result.corrupt),
        shards=shards,
        seconds=seconds,
        scoring_seconds=result.seconds,
        scored_now=result.scored_now,
        shards_resumed=result.shards_resumed,
        files=files,
    )
