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
from pathlib import Path

from synthdata.tools._common import run_cli, setup_logging

PROG = "synth-pipeline"
log = logging.getLogger(PROG)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("what to make (one of --dataset / --classes)")
    g.add_argument("--dataset", metavar="NAME", help="a built-in dataset (synth-prompts --list-datasets)")
    g.add_argument("--classes", metavar="FILE", help="a class list: .txt (one a line), .json or .csv")
    g.add_argument("--out", type=Path, required=True, metavar="DIR", help="the run directory (new, or a previous run to resume)")
    g.add_argument("--images-per-class", type=int, metavar="N", help="generated images a class (default 2000; 800 few-shot; 4 with --smoke)")
    g.add_argument("--keep-per-class", type=int, metavar="N", help="images a class the filter keeps (default 40%%; all few-shot)")
    g.add_argument("--smoke", action="store_true", help="tiny random models of the real architectures (CPU, minutes; images are noise)")
    g.add_argument("--seed", type=int, default=0, help="global seed (default 0); same seed, same run")
    g.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")

    g = p.add_argument_group("real data")
    g.add_argument("--eval", dest="eval_dir", metavar="DIR", help="the real test set: an ImageFolder or shards (required without --smoke)")
    g.add_argument("--few-shot", metavar="DIR", help="real training images (ImageFolder or shards) for Real Guidance and few-shot tuning")
    g.add_argument("--shots", type=int, metavar="K", help="real images a class drawn from --few-shot")
    g.add_argument("--eval-per-class", type=int, metavar="N", help="size of the smoke stand-in test set a class (default 2)")

    g = p.add_argument_group("stages (defaults: the paper's recipe)")
    g.add_argument("--prompt-method", choices=["le", "template", "basic"],
                   help="le (Language Enhancement; the zero-shot default), template (the dataset's CLIP templates) "
                   "or basic ('<prefix> <class>'; the few-shot default)")
    g.add_argument("--prefix", metavar="TEXT", help="domain prefix of the prompts (default: the dataset's)")
    g.add_argument("--le-model", metavar="ID", help="Language Enhancement model (default: the paper's T5)")
    g.add_argument("--images-per-prompt", type=int, metavar="N", help="images a prompt (default 10; 1 few-shot or --smoke)")
    g.add_argument("--size", type=int, choices=[64, 256], help="image size: 64 (base) or 256 (with the upsampler; default)")
    g.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale (default 3.0)")
    g.add_argument("--base-respacing", metavar="STEPS", help="base sampler steps (default 100)")
    g.add_argument("--gen-batch-size", type=int, metavar="N", help="prompts a generation batch")
    g.add_argument("--format", dest="image_format", choices=["png", "jpg", "webp"], default="png")
    g.add_argument("--clip-model", metavar="ARCH", help="open_clip architecture for filter and tune (default RN50)")
    g.add_argument("--clip-pretrained", metavar="TAG", help="its weights (default openai)")
    g.add_argument("--filter-rule", choices=["paper", "topk", "threshold", "top1"], help="selection rule (default paper)")
    g.add_argument("--epochs", type=int, help="tuning epochs (default 30)")
    g.add_argument("--tune-batch-size", type=int, metavar="N", help="synthetic images a tuning step (default 512)")
    g.add_argument("--lr", type=float, help="tuning learning rate (default 2e-3 zero-shot, 1e-3 few-shot)")
    g.add_argument("--warmup", type=float, metavar="EPOCHS",
                   help="tuning lr warmup in epochs (default synth-tune's 1; the official commands use 0)")

    g = p.add_argument_group("control")
    g.add_argument("--redo", action="append", default=[], metavar="STAGE",
                   help="redo STAGE (and every stage after it) even if finished; repeatable")
    g.add_argument("--until", metavar="STAGE", help="stop after STAGE")
    g.add_argument("-v", "--verbose", action="store_true")
    return p


def _body(args: argparse.Namespace, argv: list[str] | None) -> int:
    from synthdata.tools._pipeline import PipelineConfig, run_pipeline

    setup_logging(args.verbose)
    cfg = PipelineConfig(
        dataset=args.dataset,
        classes_file=args.classes,
        images_per_class=args.images_per_class,
        images_per_prompt=args.images_per_prompt,
        keep_per_class=args.keep_per_class,
        seed=args.seed,
        smoke=args.smoke,
        device=args.device,
        eval_dir=args.eval_dir,
        eval_per_class=args.eval_per_class,
        few_shot=args.few_shot,
        shots=args.shots,
        prompt_method=args.prompt_method,
        prefix=args.prefix,
        le_model=args.le_model,
        size=args.size,
        guidance=args.guidance,
        base_respacing=args.base_respacing,
        gen_batch_size=args.gen_batch_size,
        image_format=args.image_format,
        clip_model=args.clip_model,
        clip_pretrained=args.clip_pretrained,
        filter_rule=args.filter_rule,
        epochs=args.epochs,
        tune_batch_size=args.tune_batch_size,
        lr=args.lr,
        warmup=args.warmup,
    )
    result = run_pipeline(cfg, args.out, argv=argv, force=args.redo, until=args.until)
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
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from synthdata.tools._pipeline import PipelineError

    # OSError: a full disk or an unwritable --out is the user's to fix, not a bug.
    return run_cli(PROG, lambda: _body(args, argv), (PipelineError, OSError))


if __name__ == "__main__":
    sys.exit(main())
