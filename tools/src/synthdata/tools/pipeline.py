"""synth-pipeline: one dataset name (or class list) to a tuned CLIP classifier, with a report.

Stages: prompts (Language Enhancement) → generate (GLIDE; Real Guidance from --few-shot images) → filter
(CLIP zero-shot scores) → [eval: smoke stand-in test set] → tune (Classifier Tuning, evaluated against
zero-shot CLIP) → report (OUT/report.html). Each stage writes its output completely or not at all and
leaves a marker in OUT/stages/; rerunning the same command skips finished stages and resumes the rest.
Changing a setting redoes the stages it affects and those after them. The resolved configuration is saved
as OUT/config.json. See docs/pipeline.md.

  synth-pipeline --dataset cifar10 --images-per-class 4 --smoke --out runs/cifar10
  synth-pipeline --dataset eurosat --eval data/eurosat/test --out runs/eurosat
  synth-pipeline --dataset eurosat --eval data/eurosat/test --few-shot data/eurosat/train --shots 16 --out R
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from synthdata.tools._cli import Command
from synthdata.tools._cli.paths import local
from synthdata.tools._common import run_cli, setup_logging
from synthdata.tools._pipeline.config import RECIPES, PipelineConfig

PROG = "synth-pipeline"
log = logging.getLogger(PROG)

_WHAT = ["dataset", "classes_file", "images_per_class", "keep_per_class", "seed", "device"]
_REAL = ["eval_dir", "few_shot", "shots", "eval_per_class"]
_PROMPTS = ["prompt_method", "prefix", "le_model"]
_GENERATE = [
    "images_per_prompt", "size", "guidance", "base_respacing", "up_respacing", "upsample_temp", "gen_batch_size",
    "shard_size", "image_format", "base_checkpoint", "upsample_checkpoint", "weights_cache", "nproc_per_node",
]
_CLIP = ["clip_model", "clip_pretrained", "filter_rule", "epochs", "tune_batch_size", "lr", "warmup"]


def build_command() -> Command:
    cmd = Command(PROG, __doc__)
    g = cmd.group("what to make (one of --dataset / --classes)")
    cmd.add("out", group=g, type=local("--out", what="a local directory"), required=True,
            help="the run directory (new, or a previous run to resume)")
    cmd.add_fields(PipelineConfig, group=g, only=_WHAT)
    cmd.add_fields(PipelineConfig, group=cmd.group("real data"), only=_REAL)
    cmd.add_fields(PipelineConfig, group=cmd.group("prompts"), only=_PROMPTS)
    cmd.add_fields(PipelineConfig, group=cmd.group("generation (GLIDE)"), only=_GENERATE)
    cmd.add_fields(PipelineConfig, group=cmd.group("filter and Classifier Tuning (CLIP)"), only=_CLIP)
    g = cmd.group("control")
    cmd.add("redo", group=g, action="append", default=[])
    cmd.add("until", group=g, default=None)
    cmd.add("fresh", group=g, action="store_true", default=False, help="redo every stage, even finished ones")
    cmd.add("dry_run", group=g, action="store_true", default=False)
    cmd.declare_recipes(RECIPES)
    cmd.add_run_options()
    cmd.deprecate("--warmup", "warmup")
    return cmd


def build_parser() -> argparse.ArgumentParser:
    return build_command().parser


def _config(cmd: Command, args: argparse.Namespace) -> PipelineConfig:
    smoke = args.recipe == "smoke"
    return cmd.build(PipelineConfig, args, recipe=args.recipe if not smoke else "default", smoke=smoke)


def _print_summary(result, args: argparse.Namespace) -> None:
    ran = result.ran
    summary = ", ".join(f"{o.name} {o.status}" + (f" {o.seconds:.1f}s" if o.status == "ran" else "")
                        for o in result.outcomes)
    print(f"{PROG}: {summary}", file=sys.stderr)
    by_method = {r.get("method"): r for r in result.results}
    if "zero-shot" in by_method and "classifier-tuning" in by_method:
        zs, ct = by_method["zero-shot"]["top1"], by_method["classifier-tuning"]["top1"]
        note = " (smoke: stand-in test set, meaningless)" if by_method["zero-shot"].get("stand_in_test_set") else ""
        print(f"zero-shot top-1 {100 * zs:.2f}% -> tuned top-1 {100 * ct:.2f}%{note}")
    report = result.run_dir / "report.html"
    if args.until and args.until != "report":
        print(f"stopped after {args.until}; rerun without --until to finish: {result.run_dir}")
    else:
        print(f"{'nothing to do; ' if not ran else ''}report: {report}")


def _body(cmd: Command, args: argparse.Namespace, argv: list[str] | None) -> int:
    from synthdata.tools._pipeline import dry_run, run_pipeline

    setup_logging(args.verbose, args.quiet)
    cfg = _config(cmd, args)
    if args.dry_run:
        print(dry_run(cfg, args.out))
        return 0
    force = ["prompts"] if args.fresh else list(args.redo)
    progress = not args.quiet and sys.stderr.isatty()  # bars on a terminal; logs get the stage lines
    result = run_pipeline(cfg, args.out, argv=argv, force=force, until=args.until, progress=progress)
    _print_summary(result, args)
    return 0


def main(argv: list[str] | None = None) -> int:
    cmd = build_command()
    args = cmd.parse(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from synthdata.tools._pipeline.config import PipelineError

    # OSError: a full disk or an unwritable --out is the user's to fix, not a bug.
    return run_cli(PROG, lambda: _body(cmd, args, argv), (PipelineError, OSError))


if __name__ == "__main__":
    sys.exit(main())
