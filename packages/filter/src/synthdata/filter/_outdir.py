"""The output directory of a filter run: what it may be, and clearing a previous run's files from it."""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path

from synthdata.filter.layout import CACHE_DIR, PRODUCER, REPORT_DIR, REPORT_FILE, SCORES_FILE, SHARD_PREFIX
from synthdata.shards import DATASET_JSON, OutputDirError, read_dataset_json
from synthdata.shards.errors import DatasetInfoError

log = logging.getLogger(__name__)


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


def clear_previous(out: Path, *, keep_checkpoints: bool) -> None:
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
        clear_previous(out, keep_checkpoints=keep_checkpoints)

