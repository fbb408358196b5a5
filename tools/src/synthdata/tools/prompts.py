"""synth-prompts: class names (a built-in dataset or a file) to a prompts JSONL file.

Methods: ``le`` (Language Enhancement: a keyword-to-text T5 writes sentences around each class name, the
paper's recipe) and ``template`` (the dataset's CLIP templates filled with each class name).
Each output line is {"id", "class_index", "class_name", "prompt", "source"}; a sidecar
FILE.jsonl.config.json records the settings and per-class counts. An interrupted ``le`` run resumes
from its journal (.FILE.jsonl.le-journal.jsonl) when the same command is run again. See docs/prompts.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from synthdata.prompts import GENERIC_PREFIX, PromptsError, get_dataset, list_datasets
from synthdata.prompts.config import DEFAULT_LE_MODEL, RECIPES, PromptsConfig
from synthdata.shards.atomic import atomic_write_json
from synthdata.tools._cli import Command
from synthdata.tools._cli.paths import local
from synthdata.tools._common import run_cli, setup_logging

PROG = "synth-prompts"
SUMMARY_ROWS = 40


def build_command() -> Command:
    cmd = Command(PROG, __doc__)
    g = cmd.group("classes (exactly one)")
    cmd.add("dataset", group=g, default=None, help=f"a built-in dataset: {', '.join(list_datasets())}")
    cmd.add("classes_file", group=g, type=local("--classes"), default=None)
    cmd.add("list_datasets", group=g, action="store_true", default=False)
    g = cmd.group("output")
    cmd.add("out", group=g, type=local("--out", what="a local file path"), default=None, metavar="FILE.jsonl",
            help="the prompts file to write")
    cmd.add_fields(PromptsConfig, group=g, only=["method", "per_class", "prefix", "suffix"])
    g = cmd.group("Language Enhancement (--prompt-method le)")
    cmd.add_fields(PromptsConfig, group=g, exclude=["method", "per_class", "prefix", "suffix"])
    cmd.add("fresh", group=g, action="store_true", default=False,
            help="start over instead of reusing the finished blocks of an interrupted run")
    cmd.add_recipes(PromptsConfig, RECIPES)
    cmd.add_run_options()
    for old, dest in (("--method", "method"), ("--per-class", "per_class"), ("--model", "le_model"),
                      ("--no-resume", "fresh")):
        cmd.deprecate(old, dest)
    return cmd


def build_parser() -> argparse.ArgumentParser:
    return build_command().parser


def _print_datasets() -> None:
    for name in list_datasets():
        spec = get_dataset(name)
        print(f"{name:16s} {spec.num_classes:5d} classes {len(spec.templates):3d} templates  prefix={spec.prefix!r}"
              + (f" suffix={spec.suffix!r}" if spec.suffix else ""))


def _summary(rows: list[dict], method: str, quiet: bool) -> None:
    if quiet:
        return
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(stderr=True)
    table = Table(title=f"synth-prompts: {method}, unique prompts per class", box=box.SIMPLE_HEAD, pad_edge=False)
    cols = ["#", "class", "unique", "wanted"]
    keys = []
    if method == "le":
        # the per-class counts of generate(); see docs/prompts.md
        keys = ["generated", "duplicates", "missing_class", "repaired", "dropped", "shortfall"]
        cols += ["sampled", "dup", "no name", "rep", "drop", "short"]
    for c in cols:
        table.add_column(c, justify="left" if c == "class" else "right", overflow="fold")
    short = [r for r in rows if r.get("shortfall")]
    head = rows[: SUMMARY_ROWS // 2]
    shown = rows if len(rows) <= SUMMARY_ROWS else head + [r for r in short if r not in head]
    for r in shown:
        vals = [str(r["class_index"]), escape(r["class_name"]), str(r["unique"]), str(r["wanted"])]
        table.add_row(*vals, *(str(r[k]) for k in keys))
    console.print(table)
    if len(shown) < len(rows):
        console.print(f"({len(rows) - len(shown)} more classes not shown; all counts are in the .config.json sidecar)")
    total = sum(r["unique"] for r in rows)
    console.print(f"{total} prompts over {len(rows)} classes")
    if short:
        names = ", ".join(f"{r['class_index']}:{escape(r['class_name'])} (-{r['shortfall']})" for r in short[:20])
        console.print(f"[yellow]warning:[/] {len(short)} classes are short of {rows[0]['wanted']} unique prompts: {names}"
                      + (" ..." if len(short) > 20 else ""))


def _check_usage(cmd: Command, args: argparse.Namespace) -> None:
    if (args.dataset is None) == (args.classes_file is None):
        cmd.parser.error("give exactly one of --dataset NAME or --classes FILE")
    if args.out is None:
        cmd.parser.error("--out FILE.jsonl is required")
    if args.per_class < 1:
        cmd.parser.error("--prompts-per-class must be at least 1")
    if args.recipe == "smoke" and args.le_model != DEFAULT_LE_MODEL:
        cmd.parser.error("--smoke uses its own tiny model; drop --le-model")


def _template_prompts(cfg: PromptsConfig, source, prefix: str, suffix: str, meta: dict) -> tuple[list, list]:
    from synthdata.prompts import GENERIC_TEMPLATES, template_prompts

    templates = source.templates_or(GENERIC_TEMPLATES)
    explicit = cfg.prefix is not None
    records = template_prompts(source.classnames, templates, cfg.per_class,
                               prefix=prefix if explicit else None, suffix=suffix if explicit else "")
    rows = []
    for ci, name in enumerate(source.classnames):
        uniq = len({r.prompt for r in records if r.class_index == ci})
        rows.append({"class_index": ci, "class_name": name, "unique": uniq, "wanted": cfg.per_class})
    meta["templates"] = list(templates) if not explicit else [f"{prefix} {{}}{suffix}"]
    return records, rows


def _run(cmd: Command, args: argparse.Namespace) -> int:
    if args.list_datasets:
        _print_datasets()
        return 0
    _check_usage(cmd, args)
    setup_logging(args.verbose, args.quiet)
    from synthdata.prompts import write_prompts
    from synthdata.prompts.classes import resolve_classes

    cfg = cmd.build(PromptsConfig, args, RECIPES)
    out = Path(args.out)
    source = resolve_classes(dataset=args.dataset, classes_file=args.classes_file)
    if args.dataset is None:  # a class list keeps the generic prefix, even when it equals a data set's
        source = dataclasses.replace(source, templates=None, prefix=GENERIC_PREFIX, suffix="")
    origin = {"dataset": source.dataset} if args.dataset is not None else {"classes": str(args.classes_file)}
    prefix, suffix = cfg.domain(source.dataset if args.dataset is not None else None, source.prefix, source.suffix)
    meta: dict = {"tool": PROG, "method": cfg.method, **origin, "num_classes": len(source.classnames),
                  "per_class": cfg.per_class, "prefix": prefix, "suffix": suffix}
    if cfg.prompt_domain != "dataset":
        meta["prompt_domain"] = cfg.prompt_domain
    if cfg.method == "template":
        records, rows = _template_prompts(cfg, source, prefix, suffix, meta)
    else:
        records, rows = _run_le(cfg, args, list(source.classnames), out, prefix, suffix, meta)

    n = write_prompts(out, records)
    meta["lines"] = n
    meta["classes_summary"] = rows
    atomic_write_json(out.with_name(out.name + ".config.json"), meta, sort_keys=False)
    _journal_path(out).unlink(missing_ok=True)  # the output is complete: nothing left to resume
    _summary(rows, cfg.method, args.quiet)
    if not args.quiet:
        print(f"wrote {n} prompts to {out}", file=sys.stderr)
    return 0


def _journal_path(out: Path) -> Path:
    """Finished Language Enhancement blocks of an unfinished run writing ``out``."""
    return out.with_name(f".{out.name}.le-journal.jsonl")


def _run_le(cfg: PromptsConfig, args: argparse.Namespace, classnames: list[str], out: Path, prefix: str,
            suffix: str, meta: dict) -> tuple[list, list]:
    import torch
    import transformers
    from tqdm import tqdm

    from synthdata.prompts.le import DEFAULT_BLOCK_CLASSES, LanguageEnhancer, le_prompts

    le_cfg = cfg.le_config()
    inputs = cfg.le_inputs(classnames, args.dataset)
    if cfg.smoke:
        words = classnames + (inputs or [])  # the smoke tokenizer's vocabulary holds the words of its inputs
        enhancer = LanguageEnhancer.smoke(words, device="cpu" if cfg.device == "auto" else cfg.device)
    else:
        enhancer = LanguageEnhancer.from_pretrained(cfg.le_model, device=cfg.device, option="--le-model")
    bar = tqdm(total=len(classnames) * cfg.per_class, unit="sent", desc="language enhancement",
               disable=args.quiet, file=sys.stderr, dynamic_ncols=True)
    journal = _journal_path(out)
    if args.fresh:
        journal.unlink(missing_ok=True)
    with bar:
        result = enhancer.generate_resumable(classnames, le_cfg, journal=journal, inputs=inputs, progress=bar.update)
    records = le_prompts(result, classnames, prefix, suffix, join=cfg.join)
    keys = ("class_index", "class_name", "unique", "wanted", "generated", "duplicates", "empty", "missing_class",
            "repaired", "dropped", "rounds", "saturated", "shortfall")
    rows = [{k: getattr(st, k) for k in keys} for st in result.stats]
    meta.update({
        "model": enhancer.model_id, "smoke": cfg.smoke, "device": str(enhancer.device),
        "le_config": {k: getattr(le_cfg, k) for k in le_cfg.__dataclass_fields__},
        "block_classes": DEFAULT_BLOCK_CLASSES, "generate_calls": result.calls, "shortfall_classes": len(result.shortfalls),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    })
    if inputs is not None:
        meta["le_labels"] = {"kind": cfg.le_labels, "inputs": inputs}
    return records, rows


def main(argv: list[str] | None = None) -> int:
    cmd = build_command()
    args = cmd.parse(argv)
    return run_cli(PROG, lambda: _run(cmd, args), (PromptsError, ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
