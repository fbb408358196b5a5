"""synth-tune: Classifier Tuning of CLIP on synthetic shards (zero-shot or few-shot), evaluated on real data.

Builds CLIP's zero-shot head from class names and templates, evaluates it, tunes it on cached frozen image
features (or end to end with --finetune), evaluates the tuned head and a WiSE-FT sweep, and writes
results.jsonl, the heads (safetensors), confusion.png, config.json, train_log.jsonl and a per-epoch
checkpoint.pt (rerun the same command to resume after an interruption) to --out.
Defaults are the paper's recipe; see docs/tune.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from synthdata.tools._common import run_cli, setup_logging

PROG = "synth-tune"
SMOKE_MODEL = "synthdata-tiny-vit"
log = logging.getLogger(PROG)


def _alphas(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers in [0, 1], got {text!r}") from exc
    if not values or not all(0 <= v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers in [0, 1], got {text!r}")
    return values


def _config_option(group, flag: str, field: str, text: str, **kwargs) -> None:
    """An option for the TuneConfig ``field`` (same name as its ``dest``), with its type and default."""
    from synthdata.tune import TuneConfig

    default = getattr(TuneConfig(), field)
    kwargs.setdefault("metavar", flag.lstrip("-").upper().replace("-", "_"))  # argparse's, from the flag
    help_text = f"{text} (default {default})"
    group.add_argument(flag, dest=field, type=type(default), default=default, help=help_text, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    from synthdata.tune import TuneConfig

    d = TuneConfig()
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    g = parser.add_argument_group("data")
    g.add_argument(
        "--train",
        type=Path,
        action="append",
        default=[],
        metavar="SHARDS",
        help="synthetic shard directory (repeatable; all share one class list)",
    )
    g.add_argument(
        "--eval",
        type=Path,
        required=True,
        metavar="DIR",
        help="real test data: an ImageFolder (sorted folder names = class indices) or shards",
    )
    g.add_argument(
        "--few-shot",
        type=Path,
        metavar="DIR",
        help="real training data (ImageFolder or shards) for the few-shot setting; needs --shots",
    )
    g.add_argument(
        "--shots", type=int, metavar="K", help="real images per class drawn from --few-shot by --seed"
    )
    g.add_argument("--out", type=Path, required=True, help="output directory (results.jsonl is appended)")
    g.add_argument(
        "--cache-dir",
        type=Path,
        help="feature cache directory (default OUT/feature_cache; shareable between runs)",
    )
    g.add_argument("--no-cache", action="store_true", help="compute features without reading/writing a cache")
    g.add_argument(
        "--no-resume",
        action="store_true",
        help="discard OUT/checkpoint.pt and train from the start (default: continue an interrupted run)",
    )

    g = parser.add_argument_group("classes (one of)")
    c = g.add_mutually_exclusive_group(required=True)
    c.add_argument(
        "--classes-from-shards",
        action="store_true",
        help="class names from the first --train directory's dataset.json",
    )
    c.add_argument(
        "--dataset", metavar="NAME", help="a built-in dataset of synthdata.prompts (names+templates)"
    )
    c.add_argument("--classes", type=Path, metavar="FILE", help="class names file (synthdata.prompts format)")
    g.add_argument(
        "--templates",
        type=Path,
        metavar="FILE",
        help="prompt templates, one per line with '{}' for the class (default: the dataset's, "
        "else synthdata.clip.DEFAULT_TEMPLATES)",
    )

    g = parser.add_argument_group("model")
    g.add_argument("--model", help=f"open_clip architecture (default {d.model})")
    g.add_argument(
        "--pretrained",
        help=f"open_clip weights tag or file; 'none' = random weights (default {d.pretrained})",
    )
    g.add_argument(
        "--smoke",
        action="store_true",
        help=f"tiny random CLIP ({SMOKE_MODEL}, no weights) for checking an install and CI; numbers are "
        "not CLIP's",
    )
    g.add_argument("--precision", default=d.precision, choices=["fp32", "fp16", "bf16"])
    g.add_argument("--device", default=d.device, help=f"torch device (default {d.device})")
    g.add_argument(
        "--finetune",
        action="store_true",
        help="train the image encoder end to end too (default: frozen encoder, cached features)",
    )
    _config_option(
        g,
        "--bn-calibration",
        "bn_calibration",
        "an encoder whose BatchNorm layers never saw data (random weights) first gets their statistics "
        "estimated from up to N training images; pretrained encoders are untouched; 0 = off",
        metavar="N",
    )

    g = parser.add_argument_group("optimisation (defaults: the paper's recipe)")
    _config_option(g, "--epochs", "epochs", "training epochs")
    g.add_argument(
        "--lr",
        type=float,
        default=None,
        help="AdamW learning rate (default 2e-3 zero-shot, 1e-3 few-shot, 1e-5 with --finetune)",
    )
    _config_option(g, "--wd", "weight_decay", "AdamW weight decay")
    _config_option(
        g,
        "--warmup",
        "warmup_epochs",
        "linear warmup in epochs before the cosine decay; 0 = none, as the official code's published "
        "commands run it",
    )
    _config_option(g, "--grad-clip", "grad_clip", "gradient-norm clip; 0 = off")
    _config_option(g, "--batch-size", "batch_size", "synthetic images a step")
    _config_option(g, "--real-batch-size", "real_batch_size", "real images a step in the few-shot setting")
    _config_option(g, "--syn-weight", "syn_weight", "synthetic loss weight")
    _config_option(g, "--real-weight", "real_weight", "real loss weight")
    _config_option(
        g, "--sl", "sl", "soft-label weight in [0, 1]: (1-sl)*CE + sl*SoftCE(zero-shot head); 0 = off"
    )
    _config_option(g, "--sl-T", "sl_temperature", "distillation temperature")
    _config_option(g, "--label-smoothing", "label_smoothing", "label smoothing of the cross-entropy terms")
    g.add_argument(
        "--pseudo-labels",
        action="store_true",
        help="hard pseudo-labels (the zero-shot head's argmax) instead of its soft labels, weighted by --sl",
    )
    g.add_argument("--seed", type=int, default=d.seed, help="shuffling, few-shot draw, random weights")
    g.add_argument(
        "--wise-alphas",
        type=_alphas,
        default=d.wise_alphas,
        metavar="A,B,...",
        help="WiSE-FT mixing coefficients to evaluate (0 = zero-shot, 1 = tuned; default 0,0.1,...,1)",
    )
    _config_option(g, "--feature-batch-size", "feature_batch_size", "images a feature-extraction batch")
    _config_option(
        g, "--workers", "workers", "processes decoding images for feature extraction; 0 = in-process"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def _read_templates(path: Path) -> list[str]:
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    templates = [ln for ln in lines if ln and not ln.startswith("#")]
    if not templates or any("{}" not in t and "{c}" not in t for t in templates):
        raise ValueError(f"{path}: need one template per line, each with '{{}}' for the class name")
    return templates


def resolve_classes(args: argparse.Namespace) -> tuple[list[str], list[str], str]:
    """Class names, templates, and where they came from. Only here is synthdata.prompts imported."""
    from synthdata.clip import DEFAULT_TEMPLATES
    from synthdata.shards import read_dataset_json

    templates: list[str] | None = None
    dataset_name = None
    if args.classes_from_shards:
        if not args.train:
            raise ValueError("--classes-from-shards needs a --train shard directory")
        info = read_dataset_json(args.train[0])
        classnames, source = list(info.classes), f"{args.train[0]}/dataset.json"
        dataset_name = info.config.get("dataset") if isinstance(info.config.get("dataset"), str) else None
        if dataset_name is None:  # e.g. a standalone synth-generate run: its classes may still be a dataset's
            from synthdata.prompts import find_dataset_by_classes

            spec = find_dataset_by_classes(classnames)
            dataset_name = spec.name if spec is not None else None
    elif args.dataset:
        dataset_name = args.dataset
        classnames, source = None, f"dataset {args.dataset}"
    else:
        from synthdata.prompts import load_class_list

        classnames, source = list(load_class_list(args.classes)), str(args.classes)
    if dataset_name:
        from synthdata.prompts import get_dataset

        try:
            spec = get_dataset(dataset_name)
        except ValueError:
            if args.dataset:
                raise
            spec = None  # dataset.json names a dataset the registry does not know: generic templates
        if spec is not None:
            if classnames is None:
                classnames = list(spec.classnames)
            elif len(classnames) != len(spec.classnames):
                raise ValueError(
                    f"{source} has {len(classnames)} classes but dataset {dataset_name} has "
                    f"{len(spec.classnames)}"
                )
            templates = list(spec.templates)
            source += f" (templates of {spec.name})"
    if args.templates:
        templates, source = _read_templates(args.templates), source + f", templates from {args.templates}"
    assert classnames is not None
    return classnames, templates or list(DEFAULT_TEMPLATES), source


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.smoke and (args.model or args.pretrained):
        parser.error("--smoke uses its own tiny random model; drop --model/--pretrained")
    if args.smoke:
        args.model, args.pretrained = SMOKE_MODEL, "none"
    setup_logging(args.verbose)

    def body() -> int:
        from synthdata.tune import TuneConfig, run_tuning

        if (args.few_shot is None) != (args.shots is None):
            raise ValueError("--few-shot DIR and --shots K go together")
        if not args.train and args.few_shot is None:
            raise ValueError("give synthetic shards with --train (and/or real data with --few-shot/--shots)")
        # Options named after a TuneConfig field (see _config_option) go straight into it.
        fields = {f.name for f in dataclasses.fields(TuneConfig)} - {"model", "pretrained"}
        cfg = TuneConfig(
            **{k: v for k, v in vars(args).items() if k in fields},
            model=args.model or "RN50",
            pretrained=args.pretrained or "openai",
            use_cache=not args.no_cache,
        )
        classnames, templates, source = resolve_classes(args)
        log.info("%d classes from %s; %d templates", len(classnames), source, len(templates))
        record = run_tuning(
            cfg,
            classnames=classnames,
            templates=templates,
            eval_data=args.eval,
            out=args.out,
            train=args.train,
            few_shot=args.few_shot,
            cache_dir=args.cache_dir,
            resume=not args.no_resume,
        )
        wise = record["wise_ft_best"]
        print(
            f"zero-shot top-1 {100 * record['zeroshot_top1']:.2f}%  ->  tuned top-1 {100 * record['top1']:.2f}%"
            f"  (WiSE-FT best alpha {wise['alpha']:g}: {100 * wise['top1']:.2f}%; "
            f"{record['steps']} steps, {record['timings']['total_s']:.1f}s)"
        )
        print(f"wrote {args.out / 'results.jsonl'} and heads, confusion.png, config.json, train_log.jsonl")
        return 0

    from synthdata.clip import WeightsUnavailableError
    from synthdata.shards import ShardError

    expected = (ValueError, OSError, ShardError, WeightsUnavailableError)
    return run_cli(PROG, body, expected)


if __name__ == "__main__":
    sys.exit(main())
