"""The whole filter job: check the inputs, score, select, write filtered shards, scores and report."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from synthdata.clip import ClipBundle, load_clip
from synthdata.filter._cache import ScoreCache
from synthdata.filter._outdir import check_out_dir, check_remote_out, clear_previous
from synthdata.filter._report import sheet_keys, write_histograms, write_sheets
from synthdata.filter._scoring import check_classes, score_shards
from synthdata.filter._selection import check_rule, select
from synthdata.filter._types import SampleScore, ScoreResult
from synthdata.filter._writing import copy_kept, report_doc, write_dataset_info, write_scores
from synthdata.filter.config import FilterConfig
from synthdata.filter.layout import CACHE_DIR, REPORT_FILE, SCORES_FILE, report_location
from synthdata.shards import ShardDataset, storage, write_interop_files
from synthdata.shards.atomic import atomic_write_json, removed_on_failure
from synthdata.shards.identity import settings_digest
from synthdata.shards.publish import publish_directory
from synthdata.shards.storage import default_staging_root


@dataclass(slots=True)
class FilterResult:
    """What a run did: counts, where things went, and the timing."""

    out_dir: Path | str  # a URL for a remote --out
    scored: int
    kept: int
    unreadable: int
    shards: int
    seconds: float
    scoring_seconds: float
    scored_now: int = 0
    shards_resumed: int = 0
    files: dict[str, str] = field(default_factory=dict)


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


class _Model:
    """The CLIP model: the one given, or loaded on first use (a rerun from checkpoints never loads it)."""

    def __init__(self, cfg: FilterConfig, bundle: ClipBundle | None) -> None:
        self.cfg, self.bundle = cfg, bundle

    def __call__(self) -> ClipBundle:
        if self.bundle is None:
            cfg = self.cfg
            self.bundle = load_clip(
                cfg.model, cfg.pretrained, device=cfg.device, precision=cfg.precision, cache_dir=cfg.cache_dir
            )
        return self.bundle

    @property
    def artifact(self) -> str:
        """``clip.MODEL.TAG`` of the loaded model, else of the configured one."""
        return self.bundle.artifact if self.bundle is not None else _artifact(self.cfg.model, self.cfg.pretrained)


def _settings(cfg: FilterConfig, artifact: str, templates: Sequence[str], num_classes: int) -> dict[str, Any]:
    """The run's settings as ``report.json`` and ``dataset.json`` record them."""
    execution = ("cache_dir", "progress", "resume", "staging_dir")
    settings = {k: v for k, v in asdict(cfg).items() if k not in execution}
    threshold = cfg.threshold if cfg.threshold is not None else 1.0 / num_classes
    settings.update(
        model_artifact=artifact,
        threshold_used=threshold if cfg.rule in ("paper", "threshold") else None,
        templates=list(templates),
        num_classes=num_classes,
    )
    return settings


def _mark_kept(scores: list[SampleScore], cfg: FilterConfig, num_classes: int) -> set[str]:
    """Select per ``cfg`` and set each score's ``kept``; returns the kept keys."""
    kept = select(
        scores,
        rule=cfg.rule,
        num_classes=num_classes,
        per_class=cfg.per_class,
        threshold=cfg.threshold,
        seed=cfg.seed,
    )
    for s in scores:
        s.kept = s.key in kept
    return kept


def filter_shards(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    classnames: Sequence[str],
    templates: Sequence[str],
    config: FilterConfig | None = None,
    *,
    bundle: ClipBundle | None = None,
    source_note: dict[str, Any] | None = None,
    head_names: Sequence[str] | None = None,
) -> FilterResult:
    """Score the shards in ``source`` with CLIP, select per ``config``, and write ``out``.

    ``head_names`` (default: ``classnames``): the names the CLIP text head is built from, when they differ
    from the shards' class names (``synthdata.prompts.filter_text(dataset, "paper")``).

    ``source`` is a shard directory or a directory URL (``s3://``, ``gs://``, ``http(s)://``); ``out`` a local
    directory or an ``s3://``/``gs://`` one. ``out`` receives the filtered shards (original image bytes,
    ``meta["filter"]`` added), the files timm, wids and Hugging Face read, and ``dataset.json`` (same classes;
    config = the source's config plus ``filter`` settings), written last: its presence marks a complete output.
    The report goes beside it, in ``OUT.report/``: ``scores.jsonl`` (one line per input sample, unreadable ones
    with null scores and an ``error``), ``report.json``, the figures and the score checkpoints. A remote
    ``out`` is built in a local staging folder (``config.staging_dir``) and published in commit order. Pass
    ``bundle`` to reuse a loaded model; a rerun into the same ``out`` redoes the job (the result is
    deterministic), rescoring only what its checkpoints do not cover.
    """
    cfg = (config or FilterConfig()).resolved()  # "auto" device, precision and workers settled once
    started = time.perf_counter()
    source_text, out_text = os.fspath(source), os.fspath(out)
    storage.check_location(source_text, flag="--in")
    storage.check_location(out_text, flag="--out", write=True)
    classnames = list(classnames)
    # Every input check before anything is written: a bad input leaves --out as it was.
    check_rule(cfg.rule, cfg.per_class, cfg.threshold)
    dataset = ShardDataset.open(source_text, flag="--in")
    if not dataset.shards:
        raise FileNotFoundError(f"{source_text} holds no complete shards (no *.idx.json sidecars)")
    check_classes(dataset, classnames, dataset.key_index())
    names = list(head_names) if head_names is not None else None
    if names is not None and len(names) != len(classnames):
        raise ValueError(f"{len(names)} head names for {len(classnames)} classes")
    request = _Request(dataset, classnames, templates, names, cfg, bundle, source_note, started)
    return _filter_to_url(request, out_text) if storage.is_url(out_text) else _filter_local(request, Path(out_text))


@dataclass(frozen=True, slots=True)
class _Request:
    """A checked call of :func:`filter_shards` (``head_names`` None: the head uses the shards' names)."""

    dataset: ShardDataset
    classnames: list[str]
    templates: Sequence[str]
    head_names: list[str] | None
    cfg: FilterConfig
    bundle: ClipBundle | None
    source_note: dict[str, Any] | None
    started: float


def _filter_local(req: _Request, out: Path) -> FilterResult:
    report = Path(report_location(out))
    previous = check_out_dir(req.dataset.location, out)
    # A run that fails before writing any file leaves no directory it created behind (score checkpoints are
    # files, so an interrupted scoring run keeps them for the rerun).
    with removed_on_failure(out), removed_on_failure(report):
        job = _Job(req.dataset, out, report, req.classnames, req.templates, req.cfg, req.bundle, req.head_names)
        return _filter(job, req.source_note, previous, req.started)


def staging_dir(cfg: FilterConfig, out: str) -> Path:
    """The local folder a remote ``out`` is built in (one per destination, kept for resuming)."""
    root = Path(cfg.staging_dir).expanduser() if cfg.staging_dir else default_staging_root()
    return root / f"filter-{settings_digest(out)[:16]}" / "out"


def _filter_to_url(req: _Request, out: str) -> FilterResult:
    check_remote_out(req.dataset.location, out)
    local = staging_dir(req.cfg, out)
    local.parent.mkdir(parents=True, exist_ok=True)
    result = _filter_local(req, local)
    publish_directory(report_location(local), report_location(out), last=())
    publish_directory(local, out)
    files = {k: v.replace(str(report_location(local)), report_location(out)) for k, v in result.files.items()}
    return dataclasses.replace(result, out_dir=out, files=files)


@dataclass(slots=True)
class _Job:
    """A run's checked inputs."""

    source: ShardDataset
    out: Path
    report: Path  # OUT.report: scores, report.json, figures, score checkpoints
    classnames: list[str]
    templates: Sequence[str]
    cfg: FilterConfig
    bundle: ClipBundle | None  # the model the caller passed, if any
    head_names: list[str] | None = None  # names the text head uses, when not the shards' class names


def _score(job: _Job, model: _Model) -> ScoreResult:
    """Score every input sample; finished shards come from, and new ones go to, the checkpoints in ``out``."""
    cfg = job.cfg
    fingerprint = _fingerprint(cfg, job.bundle, job.head_names or job.classnames, job.templates)
    cache = ScoreCache(job.report / CACHE_DIR, fingerprint, reuse=cfg.resume)
    return score_shards(
        job.source,  # the dataset checked before: not listed or read again, and only the shards it names
        model,
        job.classnames,
        job.templates,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        cache=cache,
        progress=cfg.progress,
        head_names=job.head_names,
    )


def _write_figures(
    job: _Job,
    scores: list[SampleScore],
    sheets: tuple[dict[int, list[str]], dict[int, list[str]], dict[str, Any]],
    *,
    threshold: float | None,
    title: str,
) -> dict[str, str]:
    """The report's PNGs (histograms, then the contact sheets of ``sheets``: most, least, images by key)."""
    most, least, images = sheets
    report_dir = job.report
    pngs = write_histograms(scores, job.classnames, report_dir, threshold=threshold, title=title)
    pngs += write_sheets(
        images,
        most,
        least,
        job.classnames,
        report_dir,
        max_classes=job.cfg.max_sheet_classes,
        per_row=job.cfg.sheet_per_class,
    )
    return {p.stem: str(p) for p in pngs}


def _filter(job: _Job, source_note: dict[str, Any] | None, previous: bool, started: float) -> FilterResult:
    """:func:`filter_shards` after its checks: score (resuming from checkpoints), select, write, report."""
    source, out, report, classnames, cfg = job.source, job.out, job.report, job.classnames, job.cfg
    model = _Model(cfg, job.bundle)
    result = _score(job, model)
    if previous:  # only now: until the new scores are in, a previous complete output stays as it was
        clear_previous(out, keep_checkpoints=True)
    artifact = model.artifact
    kept = _mark_kept(result.scores, cfg, len(classnames))
    most, least, want = (
        sheet_keys(result.scores, cfg.sheet_per_class, cfg.max_sheet_classes) if cfg.report else ({}, {}, set())
    )
    by_key = {s.key: s for s in result.scores}
    copied = copy_kept(source, out, by_key, kept, want, rule=cfg.rule, artifact=artifact, shard_size=cfg.shard_size)
    report.mkdir(parents=True, exist_ok=True)
    write_scores(report / SCORES_FILE, sorted(result.scores + result.corrupt, key=lambda s: s.key), classnames)
    settings = _settings(cfg, artifact, job.templates, len(classnames))
    if job.head_names is not None:  # recorded only when the head's names are not the shards' class names
        settings["head_names"] = list(job.head_names)
    files = {"scores": str(report / SCORES_FILE)}
    if cfg.report:
        title = f"{artifact}, rule {cfg.rule}, {len(kept)} of {len(result.scores)} kept"
        sheets = (most, least, copied.images)
        threshold = settings["threshold_used"]
        files |= _write_figures(job, result.scores, sheets, threshold=threshold, title=title)
    seconds = time.perf_counter() - started
    doc = report_doc(
        source.location, out, settings=settings, result=result, copied=copied, classnames=classnames,
        seconds=seconds, files=dict(files),
    )
    atomic_write_json(report / REPORT_FILE, doc)
    files["report"] = str(report / REPORT_FILE)
    write_interop_files(ShardDataset.open(out, read_info=False), classes=classnames, name=_name(source))
    write_dataset_info(source, out, classnames, settings, source_note)  # last: it marks a complete output
    return FilterResult(
        out_dir=out,
        scored=len(result.scores),
        kept=copied.written,
        unreadable=len(result.corrupt),
        shards=copied.shards,
        seconds=seconds,
        scoring_seconds=result.seconds,
        scored_now=result.scored_now,
        shards_resumed=result.shards_resumed,
        files=files,
    )


def _name(source: ShardDataset) -> str:
    return source.info.name if source.info is not None and source.info.name else "filtered"
