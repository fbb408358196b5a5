"""synth-tune: Classifier Tuning of CLIP on synthetic shards (zero-shot or few-shot), evaluated on real data.

Builds CLIP's zero-shot head from class names and templates, evaluates it, tunes it on cached frozen image
features (or end to end with --finetune), evaluates the tuned head and a WiSE-FT sweep, and writes
results.jsonl, the heads (safetensors), confusion.png, config.json, train_log.jsonl and a per-epoch
checkpoint.pt (rerun the same command to resume after an interruption) to --out.
Defaults are the paper's recipe as its README writes it; --recipe paper is the official code as it ran
(its head text, batches, schedule and best-epoch report; docs/reproduce.md). --print-head-text prints the
zero-shot head's class names and templates as JSON and exits.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from synthdata.tools._cli import Command
from synthdata.tools._cli.paths import check_paths, local, location
from synthdata.tools._common import run_cli, setup_logging
from synthdata.tune.config import RECIPES, TuneConfig

PROG = "synth-tune"
log = logging.getLogger(PROG)

_MODEL = ["model", "pretrained", "precision", "device", "finetune", "bn_calibration"]


def build_command() -> Command:
    cmd = Command(PROG, __doc__)
    g = cmd.group("data")
    cmd.add("src", group=g, type=location("--in"), action="append", default=[], metavar="SHARDS",
            help="synthetic shard directory to tune on (repeatable; all share one class list)")
    cmd.add("eval", group=g, type=location("--eval"), default=None, dest="eval_dir")
    cmd.add("few_shot", group=g, type=location("--few-shot"), default=None,
            help="real training data (ImageFolder or shards) for the few-shot setting; needs --shots")
    cmd.add_fields(TuneConfig, group=g, only=["shots"])
    cmd.add("out", group=g, type=local("--out", what="a local directory"), default=None,
            help="output directory (results.jsonl is appended)")
    cmd.add("feature_cache", group=g, type=local("--feature-cache"), default=None,
            help="feature cache directory (default OUT/feature_cache; shareable between runs)")
    cmd.add_fields(TuneConfig, group=g, only=["use_cache"])
    cmd.add("fresh", group=g, action="store_true", default=False,
            help="discard OUT/checkpoint.pt and train from the start (default: continue an interrupted run)")
    g = cmd.group("classes (one of)")
    how = g.add_mutually_exclusive_group(required=True)
    cmd.add("classes_from_shards", group=how, action="store_true", default=False,
            help="class names from the first --in directory's dataset.json")
    cmd.add("dataset", group=how, default=None)
    cmd.add("classes_file", group=how, type=local("--classes"), default=None)
    cmd.add("templates_file", group=g, type=local("--templates"), default=None,
            help="CLIP templates, one a line with '{}' for the class (default: the data set's, else generic ones)")
    cmd.add("print_head_text", group=g, action="store_true", default=False,
            help='print the zero-shot head\'s text as JSON ({"class_names": [...], "templates": [...]}) for the '
            "classes and --recipe given, and exit (needs no --eval or --out)")
    cmd.add_fields(TuneConfig, group=cmd.group("model"), only=_MODEL)
    cmd.add_fields(TuneConfig, group=cmd.group("optimisation (defaults: the paper's recipe)"),
                   exclude=[*_MODEL, "shots", "use_cache"])
    cmd.add_recipes(TuneConfig, RECIPES)
    cmd.add_run_options()
    for old, dest in (("--train", "src"), ("--model", "model"), ("--pretrained", "pretrained"), ("--wd", "weight_decay"),
                      ("--warmup", "warmup_epochs"), ("--sl-T", "sl_temperature"), ("--cache-dir", "feature_cache"),
                      ("--no-resume", "fresh")):
        cmd.deprecate(old, dest)
    return cmd


def resolve_head(args: argparse.Namespace) -> tuple[list[str], list[str], str, list[list[str]] | None]:
    """The zero-shot head's class names and templates for ``args.recipe``, where they came from, and the
    other names of each class its ImageFolder folders may have (None: the class names only).

    A built-in data set (``--dataset``, or shards whose classes are exactly its) has its text by recipe
    (:func:`synthdata.prompts.head_text`: the registry's, or the official code's with ``--recipe paper``);
    ``--templates`` replaces the templates whatever the recipe.
    """
    from synthdata.clip import DEFAULT_TEMPLATES
    from synthdata.prompts import folder_names, get_dataset, head_text
    from synthdata.prompts.classes import resolve_classes as resolve

    if args.classes_from_shards and not args.src:
        raise ValueError("--classes-from-shards needs an --in shard directory")
    source = resolve(
        dataset=args.dataset,
        classes_file=args.classes_file,
        shards=args.src[0] if args.classes_from_shards else None,
    )
    classnames, templates, origin = list(source.classnames), source.templates_or(DEFAULT_TEMPLATES), source.origin
    aliases = None
    if source.dataset is not None and source.classnames == get_dataset(source.dataset).classnames:
        classnames, templates = head_text(source.dataset, args.recipe or "default")
        aliases = folder_names(source.dataset)
        if args.recipe == "paper":
            origin = f"{origin}, the official code's head text (--recipe paper)"
    if args.templates_file is not None:
        from synthdata.prompts.classes import read_templates

        templates = read_templates(args.templates_file)
        origin = f"{origin}, templates from {args.templates_file}"
    return classnames, templates, origin, aliases


def check_inputs(args: argparse.Namespace) -> None:
    """The usage and path checks that need no model: bad input is reported before torch is imported."""
    missing = [flag for flag, value in (("--eval", args.eval_dir), ("--out", args.out)) if value is None]
    if missing:
        raise ValueError(f"the following arguments are required: {', '.join(missing)} (or --print-head-text)")
    if (args.few_shot is None) != (args.shots is None):
        raise ValueError("--few-shot DIR and --shots K go together")
    if not args.src and args.few_shot is None:
        raise ValueError("give synthetic shards with --in (and/or real data with --few-shot/--shots)")
    wanted = [("--in", p, "a shard directory") for p in args.src]
    wanted += [("--eval", args.eval_dir, "an ImageFolder (one sub-folder per class) or a shard directory")]
    wanted += [("--few-shot", args.few_shot, "an ImageFolder (one sub-folder per class) or a shard directory")]
    wanted += [("--classes", args.classes_file, "a class list file"), ("--templates", args.templates_file, "a file")]
    check_paths(wanted)


def _body(cmd: Command, args: argparse.Namespace) -> int:
    from synthdata.tune import run_tuning

    cfg = cmd.build(TuneConfig, args, RECIPES)
    classnames, templates, source, aliases = resolve_head(args)
    log.info("%d classes from %s; %d templates", len(classnames), source, len(templates))
    from tqdm import tqdm

    bar = tqdm(total=cfg.epochs, desc="tuning", unit="epoch", disable=args.quiet or not sys.stderr.isatty(),
               file=sys.stderr, dynamic_ncols=True)
    with bar:
        record = run_tuning(
            cfg,
            classnames=classnames,
            templates=templates,
            class_aliases=aliases,
            eval_data=args.eval_dir,
            out=args.out,
            train=args.src,
            few_shot=args.few_shot,
            cache_dir=args.feature_cache or None,
            resume=not args.fresh,
            on_epoch=lambda row: bar.update(1),
        )
    wise = record["wise_ft_best"]
    print(
        f"zero-shot top-1 {100 * record['zeroshot_top1']:.2f}%  ->  tuned top-1 {100 * record['top1']:.2f}%"
        f"  (WiSE-FT best alpha {wise['alpha']:g}: {100 * wise['top1']:.2f}%; "
        f"{record['steps']} steps, {record['timings']['total_s']:.1f}s)"
    )
    best = record.get("best_epoch_top1")
    if best is not None:
        print(
            f"final epoch top-1 {100 * record['top1']:.2f}%; best epoch {best['epoch']} top-1 {100 * best['top1']:.2f}%"
            " (selected on the test set, as the official code reports it)"
        )
    print(f"wrote {Path(args.out) / 'results.jsonl'} and heads, confusion.png, config.json, train_log.jsonl")
    return 0


def main(argv: list[str] | None = None) -> int:
    cmd = build_command()
    args = cmd.parse(argv)
    setup_logging(args.verbose, args.quiet)

    def body() -> int:
        if args.print_head_text:
            classnames, templates, _, _ = resolve_head(args)
            print(json.dumps({"class_names": classnames, "templates": templates}, ensure_ascii=False))
            return 0
        check_inputs(args)  # before torch is imported: a wrong path answers at once
        from synthdata.clip import WeightsUnavailableError
        from synthdata.shards import ShardError

        try:
            return _body(cmd, args)
        except (ShardError, WeightsUnavailableError) as exc:
            raise ValueError(str(exc)) from exc

    return run_cli(PROG, body, (ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
