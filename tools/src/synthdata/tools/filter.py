"""synth-filter: keep the synthetic images CLIP recognises as their class (batched, streaming, no shell).

Scores every sample of a shard directory with CLIP zero-shot classification over the class names (the text
head is built once from the data set's templates), selects per class with the paper's rule or another, and
writes filtered shards (original image bytes, scores in each sample's metadata), F/scores.jsonl,
F/report.json and F/report/*.png. Each input shard's scores are checkpointed as soon as it is scored, so
rerunning the same command after an interruption (even SIGKILL) rescores only the unfinished shards and
gives the same output; rerunning with another selection rule re-selects without rescoring.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from synthdata.clip import DEFAULT_TEMPLATES, WeightsUnavailableError
from synthdata.filter import RULES, ClassListError, FilterConfig, filter_shards
from synthdata.shards import ShardError, read_dataset_json
from synthdata.tools._common import run_cli, setup_logging

PROG = "synth-filter"
SMOKE_MODEL = "synthdata-tiny-rn"
log = logging.getLogger(PROG)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("--in", dest="src", type=Path, required=True, help="input shard directory")
    parser.add_argument(
        "--out", type=Path, required=True, help="output directory (new, empty, or a previous run)"
    )

    g = parser.add_argument_group("classes and prompts (default: --classes-from-shards)")
    how = g.add_mutually_exclusive_group()
    how.add_argument(
        "--classes-from-shards", action="store_true", help="class names from the input's dataset.json"
    )
    how.add_argument(
        "--dataset", help="a built-in data set name (synthdata.prompts): its classes and templates"
    )
    how.add_argument("--classes", type=Path, help="a class list file (one name a line, in class-index order)")
    g.add_argument(
        "--templates",
        type=Path,
        help="CLIP templates file, one '{}' template a line (default: the data set's, else generic ones)",
    )

    g = parser.add_argument_group("model")
    g.add_argument("--model", default="RN50", help="open_clip architecture (default RN50, the paper's)")
    g.add_argument(
        "--pretrained", default="openai", help="weights tag or file; 'none' for random (default openai)"
    )
    g.add_argument(
        "--cache-dir",
        help="where pretrained weights are cached: a Hugging Face hub cache (default $HF_HUB_CACHE, "
        "~/.cache/huggingface/hub)",
    )
    g.add_argument(
        "--smoke", action="store_true", help=f"tiny random model ({SMOKE_MODEL}) for checks and CI"
    )
    g.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    g.add_argument(
        "--precision",
        choices=["auto", "fp32", "fp16", "bf16"],
        default="auto",
        help="auto: fp16 on CUDA, fp32 on CPU",
    )
    g.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")
    g.add_argument(
        "--workers", type=int, default=None, help="DataLoader decoding workers (default: 1 on CPU, 4 on CUDA)"
    )

    g = parser.add_argument_group("selection")
    g.add_argument("--rule", choices=RULES, default="paper", help="selection rule (default paper)")
    g.add_argument(
        "--per-class", type=int, help="samples to keep per class (paper/topk quota; a cap otherwise)"
    )
    g.add_argument(
        "--threshold", type=float, help="confidence threshold (default 1/C for paper and threshold)"
    )
    g.add_argument("--seed", type=int, default=0, help="seed of the paper rule's random choice (default 0)")
    g.add_argument(
        "--fresh", action="store_true", help="ignore the score checkpoints of a previous run into --out"
    )

    g = parser.add_argument_group("output")
    g.add_argument("--shard-size", type=int, default=1000, help="samples per output shard (default 1000)")
    g.add_argument(
        "--no-report", action="store_true", help="skip the PNG report (report.json is still written)"
    )
    g.add_argument("-v", "--verbose", action="store_true")
    return parser


def _prompts_module():
    try:
        import synthdata.prompts as prompts
    except ImportError:  # the prompts member is optional for this tool
        return None
    return prompts


def _read_templates(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read --templates {path}: {exc.strerror}") from exc
    templates = [t.strip() for t in lines if t.strip() and not t.lstrip().startswith("#")]
    if not templates or any("{}" not in t for t in templates):
        raise ValueError(f"--templates {path}: need one template a line, each with '{{}}' for the class name")
    return templates


def resolve_classes(args: argparse.Namespace) -> tuple[list[str], list[str], str]:
    """Class names, templates and a note on where they came from."""
    templates: list[str] | None = None
    if args.dataset:
        prompts = _prompts_module()
        if prompts is None:
            raise ValueError(
                "--dataset needs the synthdata-prompts package; use --classes-from-shards or --classes"
            )
        spec = prompts.get_dataset(args.dataset)
        classnames, templates, origin = list(spec.classnames), list(spec.templates), f"dataset {spec.name}"
    elif args.classes:
        prompts = _prompts_module()
        if prompts is not None:
            classnames = list(prompts.load_class_list(args.classes))
        else:
            text = args.classes.read_text(encoding="utf-8").splitlines()
            classnames = [line.strip() for line in text if line.strip() and not line.startswith("#")]
        origin = f"class list {args.classes}"
        if prompts is not None and (spec := prompts.find_dataset_by_classes(classnames)) is not None:
            templates, origin = list(spec.templates), origin + f" (the classes of {spec.name}: its templates)"
    else:
        info = read_dataset_json(args.src)
        classnames, origin = list(info.classes), f"{args.src}/dataset.json"
        name = info.config.get("dataset") if isinstance(info.config, dict) else None
        # a generation run is named after its data set
        name = name if isinstance(name, str) and name else info.name
        prompts = _prompts_module() if isinstance(name, str) and name else None
        if prompts is not None:
            try:
                templates = list(prompts.get_dataset(name).templates)
                origin += f" (templates of dataset {name})"
            except ValueError:
                spec = prompts.find_dataset_by_classes(classnames)
                if spec is None:
                    log.info("%r in dataset.json is not a built-in data set; generic templates", name)
                else:  # e.g. synth-generate named the run after its --out folder
                    templates = list(spec.templates)
                    origin += f" (the classes of {spec.name}: its templates)"
    if args.templates:
        templates = _read_templates(args.templates)
    return classnames, templates or list(DEFAULT_TEMPLATES), origin


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _body(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    classnames, templates, origin = resolve_classes(args)
    device = _device(args.device)
    precision = (
        args.precision if args.precision != "auto" else ("fp16" if device.startswith("cuda") else "fp32")
    )
    workers = args.workers if args.workers is not None else (4 if device.startswith("cuda") else 1)
    if args.batch_size < 1 or workers < 0 or args.shard_size < 1:
        raise ValueError("--batch-size and --shard-size must be >= 1 and --workers >= 0")
    config = FilterConfig(
        model=SMOKE_MODEL if args.smoke else args.model,
        pretrained="none" if args.smoke else args.pretrained,
        device=device,
        precision=precision,
        cache_dir=args.cache_dir,
        batch_size=args.batch_size,
        num_workers=workers,
        rule=args.rule,
        per_class=args.per_class,
        threshold=args.threshold,
        seed=args.seed,
        shard_size=args.shard_size,
        report=not args.no_report,
        resume=not args.fresh,
        progress=sys.stderr.isatty(),
    )
    log.info(
        "%d classes from %s; %d templates; %s/%s on %s (%s)",
        len(classnames),
        origin,
        len(templates),
        config.model,
        config.pretrained,
        device,
        precision,
    )
    result = filter_shards(
        args.src, args.out, classnames, templates, config, source_note={"classes_from": origin}
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
            f"warning: {result.unreadable} unreadable sample(s) skipped; see {args.out}/report.json",
            file=sys.stderr,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return run_cli(
        PROG,
        lambda: _body(args),
        (ShardError, ClassListError, WeightsUnavailableError, ValueError, FileNotFoundError),
    )


if __name__ == "__main__":
    raise SystemExit(main())
