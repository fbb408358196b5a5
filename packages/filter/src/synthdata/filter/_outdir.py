"""The output of a filter run, ``OUT`` and ``OUT.report/``: what they may be, and clearing a previous run's files."""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path

from synthdata.filter.layout import (
    CACHE_DIR,
    PRODUCER,
    REPORT_FILE,
    REPORT_PNGS,
    SCORES_FILE,
    SHARD_PREFIX,
    report_location,
)
from synthdata.shards import DATASET_JSON, INTEROP_FILES, OutputDirError, read_dataset_json, storage
from synthdata.shards.errors import DatasetInfoError

log = logging.getLogger(__name__)

_DATA_FILES = {DATASET_JSON, *INTEROP_FILES}
_REPORT_FILES = {SCORES_FILE, REPORT_FILE, *REPORT_PNGS}


def _same_place(a: str, b: str) -> bool:
    if storage.is_url(a) or storage.is_url(b):
        return a.rstrip("/") == b.rstrip("/")
    return Path(a).resolve() == Path(b).resolve()


def _producer(out: str) -> str | None:
    try:
        return read_dataset_json(out).producer
    except DatasetInfoError:
        return None


def _foreign(names: list[str], ours: set[str]) -> list[str]:
    """Names that a filter run did not write (shards and hidden temp files are ours)."""
    return [n for n in names if n not in ours and not n.startswith((f"{SHARD_PREFIX}-", f".{SHARD_PREFIX}-", "."))]


def _refuse_foreign(out: str, names: list[str], ours: set[str]) -> None:
    foreign = _foreign(names, ours)
    producer = _producer(out) if DATASET_JSON in names else None
    if (producer is not None and producer != PRODUCER) or foreign:
        raise OutputDirError(
            f"--out {out} is not empty and is not a synth-filter output "
            f"({', '.join(sorted(foreign)[:3]) or DATASET_JSON}); choose an empty or new directory"
        )


def check_out_dir(source: str, out: Path) -> bool:
    """Refuse an ``out`` a filter run must not write to; True if it holds a previous synth-filter output.

    ``out`` (and ``OUT.report`` beside it) may be new, empty, or a previous (possibly interrupted) synth-filter
    output; never the input directory itself, a file, or a non-empty directory a filter run did not write.
    Changes nothing.
    """
    report = Path(report_location(out))
    if out.exists() and _same_place(source, str(out)):
        raise OutputDirError(f"--out {out} is the input directory; choose another")
    for path in (out, report):
        if path.exists() and not path.is_dir():
            raise OutputDirError(f"--out {out}: {path} exists and is not a directory; choose another --out")
    if report.is_dir():
        _refuse_foreign(str(out), [p.name for p in report.iterdir()], _REPORT_FILES | {CACHE_DIR})
    if not out.exists() or not any(out.iterdir()):
        return report.is_dir() and any(report.iterdir())
    _refuse_foreign(str(out), [p.name for p in out.iterdir()], _DATA_FILES)
    return True


def check_remote_out(source: str, out: str) -> None:
    """The same refusals for a directory URL (listing only; nothing is written)."""
    if _same_place(source, out):
        raise OutputDirError(f"--out {out} is the input directory; choose another")
    if storage.isdir(out):
        _refuse_foreign(out, storage.listdir(out), _DATA_FILES)


def clear_previous(out: Path, *, keep_checkpoints: bool) -> None:
    """Remove a previous output's files (``dataset.json`` first), and its report's except the score
    checkpoints when ``keep_checkpoints``."""
    log.info("%s holds a previous synth-filter output; redoing it", out)
    with contextlib.suppress(FileNotFoundError):
        (out / DATASET_JSON).unlink()  # first: without it the directory is no longer a complete dataset
    report = Path(report_location(out))
    for folder, keep in ((out, None), (report, CACHE_DIR if keep_checkpoints else None)):
        for p in folder.iterdir() if folder.is_dir() else []:
            if p.name == keep:
                continue
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()


def prepare_out_dir(source: str | Path, out: Path, *, keep_checkpoints: bool = True) -> None:
    """Make ``out`` ready: empty, or a previous (possibly interrupted) synth-filter output.

    A previous output's files are removed except its score checkpoints (``OUT.report/.filter-scores/``, unless
    ``keep_checkpoints`` is false), so a rerun rescores only what the checkpoints do not cover and redoes the
    rest. Refuses what :func:`check_out_dir` refuses.
    """
    if check_out_dir(str(source), out):
        clear_previous(out, keep_checkpoints=keep_checkpoints)
