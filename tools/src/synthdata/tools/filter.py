"""synth-filter: keep the synthetic images CLIP recognises as their class (batched, streaming, no shell).

Scores every sample of a shard directory with CLIP zero-shot classification over the class names (the text
head is built once from the data set's templates), selects per class with the paper's rule or another
(--filter-rule, --keep-per-class), and writes OUT: the filtered shards (original image bytes, scores in each
sample's metadata), the files timm, wids and Hugging Face read, and dataset.json, last. The run's report goes
beside it, in OUT.report/: scores.jsonl, report.json, the PNG figures and the score checkpoints. --in may be
a directory URL (s3://, gs://, http(s)://) and --out an s3:// or gs:// one (built in --staging-dir, then
uploaded, dataset.json last). Each input shard's scores are checkpointed as soon as it is scored, so
rerunning the same command after an interruption (even SIGKILL) rescores only the unfinished shards and
gives the same output; rerunning with another selection rule re-selects without rescoring.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from synthdata.filter.config import RECIPES, FilterConfig
from synthdata.tools._cli import Command
from synthdata.tools._cli.paths import check_paths, local, location
from synthdata.tools._common import run_cli, setup_logging

PROG = "synth-filter"
log = logging.getLogger(PROG)


def build_command() -> Command:
    cmd = Command(PROG, __doc__)
    cmd.add("src", type=location("--in"), required=True, help="input shard directory: a local path or a directory URL")
    cmd.add("out", type=location("--out", write=True), required=True,
            help="output directory: local, s3:// or gs:// (new, empty, or a previous run); the report goes to OUT.report")
    g = cmd.group("classes and prompts (default: --classes-from-shards)")
    how = g.add_mutually_exclusive_group()
    cmd.add("classes_from_shards", group=how, action="store_true", default=False)
    cmd.add("dataset", group=how, default=None)
    cmd.add("classes_file", group=how, type=local("--classes"), default=None)
    cmd.add("templates_file", group=g, type=local("--templates"), default=None,
            help="CLIP templates file, one '{}' template a line (default: the data set's, else generic ones)")
    g = cmd.group("model")
    cmd.add_fields(FilterConfig, group=g, only=["model", "pretrained", "cache_dir", "device", "precision",
                                                "batch_size", "num_workers"])
    g = cmd.group("selection")
    cmd.add_fields(FilterConfig, group=g, only=["rule", "per_class", "threshold", "seed", "resume"])
    g = cmd.group("output")
    cmd.add_fields(FilterConfig, group=g, only=["shard_size", "report", "staging_dir"],
                   types={"staging_dir": local("--staging-dir")})
    cmd.add_recipes(FilterConfig, RECIPES)
    cmd.add_run_options()
    for old, dest in (("--model", "model"), ("--pretrained", "pretrained"), ("--cache-dir", "cache_dir"),
                      ("--rule", "rule"), ("--per-class", "per_class")):
        cmd.deprecate(old, dest)
    return cmd


def resolve_text(args: argparse.Namespace) -> tuple[list[str], list[str], str, list[str] | None]:
    """The shards' class names, the templates, where they came from, and the names the CLIP head is built
    from when they differ (``--recipe paper`` on a built-in data set: the official filter's one prompt a
    class, :func:`synthdata.prompts.filter_text`)."""
    from synthdata.clip import DEFAULT_TEMPLATES
    from synthdata.prompts import filter_text, get_dataset
    from synthdata.prompts.classes import resolve_classes as resolve

    from_shards = args.dataset is None and args.classes_file is None
    source = resolve(
        dataset=args.dataset,
        classes_file=args.classes_file,
        shards=args.src if from_shards else None,
        templates_file=args.templates_file,
    )
    classnames, templates = list(source.classnames), source.templates_or(DEFAULT_TEMPLATES)
    official = args.recipe == "paper" and source.dataset is not None and args.templates_file is None
    if official and source.classnames == get_dataset(source.dataset).classnames:
        head_names, templates = filter_text(source.dataset, "paper")
        return classnames, templates, f"{source.origin}, the official filter's text (--recipe paper)", head_names
    return classnames, templates, source.origin, None


def _body(cmd: Command, args: argparse.Namespace) -> int:
    from synthdata.filter import filter_shards

    setup_logging(args.verbose, args.quiet)
    classnames, templates, origin, head_names = resolve_text(args)
    config = cmd.build(FilterConfig, args, RECIPES, progress=sys.stderr.isatty() and not args.quiet).resolved()
    log.info(
        "%d classes from %s; %d templates; %s/%s on %s (%s)",
        len(classnames), origin, len(templates), config.model, config.pretrained, config.device, config.precision,
    )
    result = filter_shards(
        args.src, args.out, classnames, templates, config, source_note={"classes_from": origin},
        head_names=head_names,
    )
    resumed = f", {result.shards_resumed} input shard(s) from checkpoints" if result.shards_resumed else ""
    speed = result.scored_now / result.scoring_seconds if result.scoring_seconds else 0.0
    print(
        f"kept {result.kept} of {result.scored} scored samples ({result.unreadable} unreadable) into "
        f"{result.shards} shard(s) in {args.out}; scores in {result.files['scores']}; "
        f"{result.scored_now} images scored at {speed:.1f} images/s{resumed}; {result.seconds:.1f} s in all"
    )
    if result.unreadable:
        print(
            f"warning: {result.unreadable} unreadable sample(s) skipped; see {result.files['report']}",
            file=sys.stderr,
        )
    return 0


def check_inputs(args: argparse.Namespace) -> None:
    """Path checks that need no model: a wrong path is reported before torch is imported."""
    check_paths([
        ("--in", args.src, "a shard directory"),
        ("--classes", args.classes_file, "a class list file"),
        ("--templates", args.templates_file, "a templates file"),
    ])


def main(argv: list[str] | None = None) -> int:
    cmd = build_command()
    args = cmd.parse(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    def body() -> int:
        check_inputs(args)  # before torch is imported
        from synthdata.clip import WeightsUnavailableError
        from synthdata.filter import ClassListError
        from synthdata.shards import ShardError

        try:
            return _body(cmd, args)
        except (ShardError, ClassListError, WeightsUnavailableError) as exc:
            raise ValueError(str(exc)) from exc

    return run_cli(PROG, body, (ValueError, FileNotFoundError, OSError))


if __name__ == "__main__":
    raise SystemExit(main())
