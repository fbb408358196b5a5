"""Names of the files a filter run writes into its output directory (see ``docs/filter.md``).

This module imports nothing heavy, so readers of a filter output (the pipeline's report) can use the names
without loading torch or open_clip.
"""

PRODUCER = "synth-filter"  # dataset.json "producer" of a filter output
SHARD_PREFIX = "filtered"  # the kept samples: filtered-000-000000.tar, ...
SCORES_FILE = "scores.jsonl"  # one line per input sample
REPORT_FILE = "report.json"  # counts, settings, timing and the files below
REPORT_DIR = "report"  # the report's PNG figures
CACHE_DIR = ".filter-scores"  # per-input-shard score checkpoints

HIST_PNG = "confidence_hist.png"  # all classes, kept vs dropped
BY_CLASS_PNG = "confidence_by_class.png"  # a grid of per-class histograms
MOST_CONFIDENT_PNG = "most_confident.png"  # contact sheet: a row per class
LEAST_CONFIDENT_PNG = "least_confident.png"
#: Every figure a report may hold in ``REPORT_DIR`` (a figure with nothing to show is not written).
REPORT_PNGS = (HIST_PNG, BY_CLASS_PNG, MOST_CONFIDENT_PNG, LEAST_CONFIDENT_PNG)
