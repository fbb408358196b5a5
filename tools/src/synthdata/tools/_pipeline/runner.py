"""Run the stages in order, skipping the finished ones.

A stage is skipped when its marker exists, its config hash is unchanged, its inputs still have the
fingerprints the marker recorded and its outputs are still what it wrote. Otherwise its outputs are
removed (a stage's output is complete or absent) and it runs again; a stage that changed changes the
inputs of the stages after it, so they rerun too. Generation keeps a partial output of an interrupted
attempt with the same config: its runner resumes from the complete shards.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import platform
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from synthdata.shards.atomic import first_missing_dir
from synthdata.tools._pipeline import layout
from synthdata.tools._pipeline._io import atomic_write_json
from synthdata.tools._pipeline.config import (
    CONFIG_SCHEMA,
    PipelineConfig,
    PipelineError,
    config_diff,
    config_hash,
)
from synthdata.tools._pipeline.context import HeadTexts, RunContext, Stage
from synthdata.tools._pipeline.stages import (
    STAGES_DIR,
    StageMarker,
    fingerprint,
    marker_path,
    read_marker,
    remove_marker,
    remove_path,
    write_marker,
)

log = logging.getLogger("synth-pipeline")

LOCK_FILE = ".lock"


@dataclass(slots=True)
class StageOutcome:
    name: str
    status: str  # "ran", "skipped", "disabled"
    seconds: float
    reason: str = ""


@dataclass(slots=True)
class PipelineResult:
    run_dir: Path
    outcomes: list[StageOutcome]
    results: list[dict[str, Any]]

    @property
    def ran(self) -> list[str]:
        return [o.name for o in self.outcomes if o.status == "ran"]


def _now() -> str:
    # Microseconds: a marker rewritten within the same second must still read as a new run.
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("torch", "open_clip_torch", "transformers", "webdataset", "numpy", "synthdata-tools"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def resolve_classes(cfg: PipelineConfig) -> tuple[list[str], list[str], str, str]:
    """Class names, CLIP templates, prompt prefix and suffix for the run's dataset or class file."""
    from synthdata.prompts import PromptsError
    from synthdata.prompts.classes import resolve_classes as resolve

    try:
        source = resolve(dataset=cfg.dataset, classes_file=cfg.classes_file)
    except PromptsError as exc:
        raise PipelineError(str(exc)) from exc
    if len(source.classnames) < 2:
        raise PipelineError(f"need at least 2 classes to tune a classifier, got {len(source.classnames)}")
    if source.templates is None:
        from synthdata.clip import DEFAULT_TEMPLATES

        templates = list(DEFAULT_TEMPLATES)
    else:
        templates = list(source.templates)
    prefix = cfg.prefix if cfg.prefix is not None else source.prefix
    return list(source.classnames), templates, prefix, source.suffix


def head_texts(cfg: PipelineConfig, classnames: list[str], templates: list[str]) -> HeadTexts:
    """The text the filter and the tuner build their CLIP heads from: the run's classes and templates, or, for
    a built-in data set under ``--recipe paper``, the official code's (``synthdata.prompts.filter_text`` and
    ``head_text``); and the other names its classes' ImageFolder folders may have."""
    if cfg.dataset is None:
        return HeadTexts(None, templates, classnames, templates, None)
    from synthdata.prompts import filter_text, folder_names, head_text

    recipe = cfg.stage_recipe if cfg.stage_recipe == "paper" else "default"
    if recipe != "paper":
        return HeadTexts(None, templates, classnames, templates, folder_names(cfg.dataset))
    f_names, f_templates = filter_text(cfg.dataset, recipe)
    t_names, t_templates = head_text(cfg.dataset, recipe)
    return HeadTexts(f_names, f_templates, t_names, t_templates, folder_names(cfg.dataset))


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    fh = open(run_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise PipelineError(f"another synth-pipeline is running in {run_dir}; wait for it or use another --out") from exc
        yield
    finally:
        fh.close()


def _check_run_dir(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise PipelineError(f"--out {run_dir} exists and is not a directory; choose another")
    ours = (run_dir / layout.CONFIG).exists() or (run_dir / "stages").is_dir()
    if run_dir.is_dir() and not ours and any(not p.name.startswith(".") for p in run_dir.iterdir()):
        raise PipelineError(
            f"--out {run_dir} is not empty and is not a synth-pipeline run; choose a new or empty directory"
        )


def check_real_data(cfg: PipelineConfig, classnames: list[str], run_dir: Path) -> None:
    """Read ``--eval`` and ``--few-shot`` (their listings, not their images) before anything is written, so
    a wrong class count, an unreadable shard directory or too few images for ``--shots`` fails at once
    instead of after generation. Skipped once tuning has finished (a rerun of a finished run stays fast and
    torch-free; a changed input then fails in its stage)."""
    checks = [(flag, path) for flag, path in (("--eval", cfg.eval_dir), ("--few-shot", cfg.few_shot)) if path]
    if not checks or read_marker(run_dir, "tune") is not None:
        return
    from synthdata.shards import ShardError
    from synthdata.tune import DataError, load_image_set, sample_few_shot

    for flag, path in checks:
        try:
            image_set = load_image_set(path, len(classnames))
            if flag == "--few-shot":
                sample_few_shot(image_set.labels, cfg.shots, cfg.seed, len(classnames))
        except (DataError, ShardError, OSError) as exc:
            raise PipelineError(f"{flag} {path}: {exc}") from exc


def _only_bookkeeping(root: Path, run_dir: Path) -> bool:
    """True when ``root`` holds no file but the runner's own (config, lock, attempt records): nothing that
    a rerun could resume from or a user would look at."""
    own = {layout.CONFIG, LOCK_FILE}
    for path in root.rglob("*"):
        if path.is_dir():
            continue
        rel = path.relative_to(run_dir).as_posix() if path.is_relative_to(run_dir) else None
        if rel not in own and not (rel and rel.startswith(f"{STAGES_DIR}/") and rel.endswith(".attempt.json")):
            return False
    return True


def _attempt_path(run_dir: Path, stage: str) -> Path:
    return marker_path(run_dir, stage).with_name(f"{stage}.attempt.json")


def _same_as_before(ctx: RunContext, name: str, attempt: Path, chash: str, inputs: dict[str, str]) -> bool:
    """Whether a resumable stage may keep its existing output: the last attempt (or finished run) had the
    same config and inputs, or nothing is recorded (output put there by hand, e.g. by ``synth-generate``
    under torchrun; the stage's own tool then checks it and refuses output made with other settings)."""
    import json

    prev: dict[str, Any] | None = None
    with contextlib.suppress(OSError, ValueError):
        prev = json.loads(attempt.read_text("utf-8"))
    if prev is None:
        marker = read_marker(ctx.run_dir, name)
        prev = None if marker is None else {"config_hash": marker.config_hash, "inputs": marker.inputs}
    if prev is None:
        return True
    return prev.get("config_hash") == chash and prev.get("inputs") == inputs


def _decide(ctx: RunContext, stage: Stage, chash: str, inputs: dict[str, str]) -> tuple[bool, str]:
    """(skip?, why) for one stage."""
    marker = read_marker(ctx.run_dir, stage.name)
    if marker is None:
        return False, "not done yet"
    if marker.config_hash != chash:
        diff = config_diff(marker.config, ctx.cfg.hashed_settings(stage.name))
        return False, "config changed (" + "; ".join(diff[:4]) + ")"
    if marker.inputs != inputs:
        changed = sorted(k for k in set(marker.inputs) | set(inputs) if marker.inputs.get(k) != inputs.get(k))
        return False, "inputs changed (" + ", ".join(changed) + ")"
    for rel, digest in marker.outputs.items():
        if fingerprint(ctx.path(rel)) != digest:
            return False, f"output {rel} changed or missing"
    return True, "done"


def run_stage(ctx: RunContext, stage: Stage, *, force: bool = False) -> StageOutcome:
    """Run one stage unless it is finished (see the module docstring)."""
    if not stage.enabled(ctx):
        remove_marker(ctx.run_dir, stage.name)
        return StageOutcome(stage.name, "disabled", 0.0, "not needed for this run")
    scfg = ctx.cfg.hashed_settings(stage.name)
    chash = config_hash(scfg)
    inputs = {k: fingerprint(p) for k, p in sorted(stage.inputs(ctx).items())}
    skip, reason = _decide(ctx, stage, chash, inputs)
    if skip and not force:
        log.info("stage %-8s skipped: finished earlier", stage.name)
        return StageOutcome(stage.name, "skipped", 0.0, reason)
    reason = "forced" if skip else reason
    log.info("stage %-8s running: %s", stage.name, reason)
    attempt = _attempt_path(ctx.run_dir, stage.name)
    keep = stage.keep_partial and not force and _same_as_before(ctx, stage.name, attempt, chash, inputs)
    remove_marker(ctx.run_dir, stage.name)
    if keep:
        present = [rel for rel in stage.outputs if ctx.path(rel).exists()]
        if present:
            log.info("stage %-8s resuming from what is already in %s", stage.name, ", ".join(present))
    else:
        for rel in stage.outputs:
            remove_path(ctx.path(rel))
    attempt.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(attempt, {"config_hash": chash, "inputs": inputs, "started": _now()})
    started, t0 = _now(), time.perf_counter()
    info = stage.run(ctx) or {}
    if ctx._device is not None:
        info.setdefault("device", ctx._device)
    seconds = time.perf_counter() - t0
    missing = [rel for rel in stage.outputs if not ctx.path(rel).exists()]
    if missing:
        raise PipelineError(f"stage {stage.name} finished without writing {', '.join(missing)} (a bug; please report)")
    marker = StageMarker(
        stage=stage.name,
        config=scfg,
        config_hash=chash,
        inputs=inputs,
        outputs={rel: fingerprint(ctx.path(rel)) for rel in stage.outputs},
        started=started,
        finished=_now(),
        seconds=round(seconds, 3),
        info=info,
    )
    write_marker(ctx.run_dir, marker)
    with contextlib.suppress(FileNotFoundError):
        attempt.unlink()
    log.info("stage %-8s done in %.1f s", stage.name, seconds)
    return StageOutcome(stage.name, "ran", seconds, reason)


def cli_options(cfg: PipelineConfig) -> dict[str, Any]:
    """The resolved settings as ``--config`` options: ``synth-pipeline --config R/config.json --out R`` reruns
    the run with exactly these settings."""
    import dataclasses

    out = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.metadata.get("cli", True)}
    out["recipe"] = cfg.stage_recipe
    return out


def write_config(ctx: RunContext, argv: Sequence[str] | None) -> None:
    """``R/config.json``: the resolved config, classes, templates, versions and the command line."""
    atomic_write_json(
        ctx.path(layout.CONFIG),
        {
            "schema": CONFIG_SCHEMA,
            "config": ctx.cfg.to_json(),
            "options": cli_options(ctx.cfg),
            "classnames": ctx.classnames,
            "clip_templates": ctx.clip_templates,
            "prefix": ctx.prefix,
            "suffix": ctx.suffix,
            "argv": list(argv) if argv is not None else sys.argv[1:],
            "versions": _versions(),
            "written": _now(),
            "stage_hashes": {s.name: config_hash(ctx.cfg.hashed_settings(s.name)) for s in STAGES},
        },
    )


def run_pipeline(
    cfg: PipelineConfig,
    run_dir: str | os.PathLike[str],
    *,
    argv: Sequence[str] | None = None,
    force: Sequence[str] = (),
    until: str | None = None,
    progress: bool = False,
) -> PipelineResult:
    """Run (or resume) the whole pipeline into ``run_dir``. ``force`` names stages to redo even when
    finished (and so everything after them); ``until`` stops after that stage; ``progress`` shows a bar
    with ETA for every long stage."""
    cfg = cfg.resolved()
    names = [s.name for s in STAGES]
    for name in [*force, *([until] if until else [])]:
        if name not in names:
            raise PipelineError(f"unknown stage {name!r}; the stages are {', '.join(names)}")
    if cfg.eval_dir is None and not cfg.smoke:
        raise PipelineError(
            "--eval DIR is needed to measure the classifier (the real test set: an ImageFolder or shards); "
            "only --smoke runs use a stand-in test set"
        )
    classnames, templates, prefix, suffix = resolve_classes(cfg)
    texts = head_texts(cfg, classnames, templates)
    run_dir = Path(run_dir).resolve()
    _check_run_dir(run_dir)  # only now: a bad setting leaves no directory behind
    check_real_data(cfg, classnames, run_dir)
    check_weights(cfg, run_dir, until=until)
    created = first_missing_dir(run_dir)
    was_empty = created is None and not any(run_dir.iterdir())
    run_dir.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(cfg, run_dir, classnames, templates, prefix, suffix, progress=progress, texts=texts)
    outcomes: list[StageOutcome] = []
    with _locked(run_dir):
        try:
            write_config(ctx, argv)
            _run_stages(ctx, outcomes, force, until)
        except BaseException:
            # A new (or empty) run directory is left as it was if the failure left nothing in it but the
            # runner's bookkeeping; once a stage has written something (a finished stage, a partial output,
            # the Language Enhancement journal) everything stays, with the attempt record, for the rerun.
            if created is not None and _only_bookkeeping(created, run_dir):
                shutil.rmtree(created, ignore_errors=True)
            elif was_empty and _only_bookkeeping(run_dir, run_dir):
                for rel in (layout.CONFIG, LOCK_FILE, STAGES_DIR):
                    remove_path(run_dir / rel)
            raise
    from synthdata.tools._pipeline.results import latest_results

    # only a tune stage that is done for these settings makes the latest results this run's (--until may
    # have stopped before it, or the settings changed since)
    tuned = any(o.name == "tune" and o.status in ("ran", "skipped") for o in outcomes)
    return PipelineResult(run_dir, outcomes, latest_results(run_dir / layout.RESULTS) if tuned else [])


def _run_stages(ctx: RunContext, outcomes: list[StageOutcome], force: Sequence[str], until: str | None) -> None:
    forced = False
    for stage in STAGES:
        forced = forced or stage.name in force
        outcomes.append(run_stage(ctx, stage, force=forced))
        if until is not None and stage.name == until:
            break


def check_weights(cfg: PipelineConfig, run_dir: Path, *, until: str | None = None) -> None:
    """Make sure every model the unfinished stages need is on disk (downloading it where the network allows)
    before the first stage runs, so a missing file fails now with one line instead of hours later."""
    if cfg.smoke:
        return
    from synthdata.tools._pipeline.weights import required_weights

    names = [s.name for s in STAGES]
    last = names.index(until) if until in names else len(names) - 1
    pending = [n for n in names[: last + 1] if read_marker(run_dir, n) is None] if run_dir.is_dir() else names
    for stages, check in required_weights(cfg):
        needed = [stage for stage in stages if stage in pending]
        if needed:
            try:
                check()
            except Exception as exc:  # each library raises its own one-line error type
                raise PipelineError(f"{needed[0]}: {exc}") from exc


def _build_stages() -> list[Stage]:
    from synthdata.tools._pipeline import (
        stage_eval,
        stage_fewshot,
        stage_filter,
        stage_generate,
        stage_prompts,
        stage_tune,
    )
    from synthdata.tools._pipeline.report import render_report

    def report_inputs(ctx: RunContext) -> dict[str, Path]:
        deps = {s.name: marker_path(ctx.run_dir, s.name) for s in STAGES if s.name != "report"}
        return {**deps, "results": ctx.path(layout.RESULTS)}

    def run_report(ctx: RunContext) -> dict[str, Any]:
        path = render_report(ctx.run_dir, [s.name for s in STAGES])
        return {"html": path.name}

    return [
        stage_prompts.STAGE,
        stage_fewshot.STAGE,
        stage_generate.STAGE,
        stage_filter.STAGE,
        stage_eval.STAGE,
        stage_tune.STAGE,
        Stage("report", (layout.REPORT_HTML, layout.REPORT_DIR), report_inputs, run_report),
    ]


STAGES: list[Stage] = _build_stages()
