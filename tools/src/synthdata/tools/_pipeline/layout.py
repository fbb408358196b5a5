"""Where a pipeline run keeps its files, relative to the run directory ``R`` (see ``docs/pipeline.md``)."""

CONFIG = "config.json"  # the full resolved configuration, versions and command line
PROMPTS = "prompts.jsonl"  # prompts stage
FEW_SHOT_DIR = "few_shot"  # fewshot stage: the K real images a class, as an ImageFolder (NNN_slug/*.png)
GENERATED_DIR = "generated"  # generate stage: shards + dataset.json
FILTER_DIR = "filtered"  # filter stage: the kept shards (data only; dataset.json and the interop files)
FILTER_REPORT_DIR = "filtered.report"  # filter stage: scores.jsonl, report.json, its PNGs (synthdata.filter)
EVAL_DIR = "eval"  # eval stage (smoke runs without --eval only): a procedural stand-in test set
TUNE_DIR = "tune"  # tune stage: heads, train_log.jsonl, the tuner's own results.jsonl, confusion.png
RESULTS = "results.jsonl"  # tune stage appends: one line per classifier evaluated (zero-shot, tuned, WiSE-FT) a run
REPORT_HTML = "report.html"  # report stage
REPORT_DIR = "report"  # report stage: the PNG figures of report.html
