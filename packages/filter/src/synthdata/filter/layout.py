"""Names of the files a filter run writes (see ``docs/filter.md``).

The output directory ``OUT`` holds only the data: the kept shards, ``dataset.json`` and the files timm, wids
and Hugging Face read. Everything about the run goes beside it, in ``OUT.report/`` (:func:`report_location`):
the scores, ``report.json``, the figures and the score checkpoints, so no reader of ``OUT`` mistakes them for
data. This module imports nothing heavy, so readers of a filter output (the pipeline's report) can use the
names without loading torch or open_clip.
"""

import os

PRODUCER = "synth-filter"  # dataset.json "producer" of a filter output
SHARD_PREFIX = "filtered"  # the kept samples: filtered-000-000000.tar, ...
REPORT_SUFFIX = ".report"  # OUT.report/ beside OUT holds the files below
SCORES_FILE = "scores.jsonl"  # one line per input sample
REPORT_FILE = "report.json"  # counts, settings, timing and the files below
CACHE_DIR = ".filter-scores"  # per-input-shard score checkpoints

HIST_PNG = "confidence_hist.png"  # all classes, kept vs dropped
BY_CLASS_PNG = "confidence_by_class.png"  # a grid of per-class histograms
MOST_CONFIDENT_PNG = "most_confident.png"  # contact sheet: a row per class
LEAST_CONFIDENT_PNG = "least_confident.png"
#: Every figure a report may hold (a figure with nothing to show is not written).
REPORT_PNGS = (HIST_PNG, BY_CLASS_PNG, MOST_CONFIDENT_PNG, LEAST_CONFIDENT_PNG)


def report_location(out: str | os.PathLike[str]) -> str:
    """``OUT.report``: where the run's scores, report and figures go (beside ``OUT``; a URL for a URL)."""
    return os.fspath(out).rstrip("/") + REPORT_SUFFIX
