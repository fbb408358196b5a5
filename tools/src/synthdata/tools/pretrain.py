"""synth-pretrain: pre-train a timm model on shards (torchrun for many GPUs/nodes), then transfer it.

  synth-pretrain [train] --data SHARDS --model resnet50 --out RUN ...      (plain flags mean train)
  synth-pretrain transfer --checkpoint RUN/checkpoints/last.pt --train T --eval V --mode finetune

Rerunning a train command with the same --out resumes from RUN/checkpoints/last.pt. On SIGTERM or SIGUSR1
(a scheduler's preemption notice) every rank saves at the next optimizer update and exits with code 143.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from synthdata.pretrain.config import TRAIN_RECIPES, TRANSFER_RECIPES, TrainConfig, TransferConfig
from synthdata.tools._cli import Command
from synthdata.tools._cli.paths import local, location
from synthdata.tools._common import run_cli, setup_logging

PROG = "synth-pretrain"
SUBCOMMANDS = ("train", "transfer")

_TRAIN_GROUPS = {
    "data": ["data", "num_classes", "resampled", "epoch_samples", "shuffle", "workers", "on_error", "log_keys"],
    "model": ["model", "img_size", "drop_path", "channels_last", "compile"],
    "optimisation": ["epochs", "batch_size", "accum_steps", "opt", "lr", "weight_decay", "momentum", "sched",
                     "warmup_epochs", "min_lr", "clip_grad"],
    "regularisation": ["smoothing", "mixup", "cutmix", "mixup_prob", "auto_augment", "color_jitter", "reprob"],
    "precision, EMA, run": ["amp", "ema", "ema_decay", "device", "seed", "out", "resume", "keep_checkpoints",
                            "save_every_steps", "preempt_signals", "preempt_exit_code", "log_every",
                            "stop_after_epochs"],
}
_AMP_NAMES = {"none": "fp32"}


def _command(name: str, doc: str, cls: type, recipes: dict, deprecated: dict[str, str], **fields) -> Command:
    """A subcommand from config ``cls``; ``deprecated``: old flag -> dest (``--amp`` values are renamed)."""
    cmd = Command(f"{PROG} {name}", doc)
    for title, names in fields.pop("groups", {None: None}).items():
        cmd.add_fields(cls, group=cmd.group(title) if title else None, only=names, **fields)
    cmd.add_recipes(cls, recipes)
    cmd.add_run_options()
    for old, dest in deprecated.items():
        cmd.deprecate(old, dest)
    cmd.deprecate("--amp", "amp", convert=lambda v: _AMP_NAMES.get(v, v))
    return cmd


def _train_command() -> Command:
    return _command(
        "train", "pre-train a timm model on shards (the default when no subcommand is given)", TrainConfig,
        TRAIN_RECIPES, {"--clip-grad": "clip_grad", "--smoothing": "smoothing", "--no-resume": "resume"},
        groups=_TRAIN_GROUPS, required=["data"],
        types={"data": location("--data"), "out": local("--out", what="a local directory")},
    )


def _transfer_command() -> Command:
    return _command(
        "transfer", "fine-tune or linear-probe a checkpoint on an ImageFolder; report top-1", TransferConfig,
        TRANSFER_RECIPES, {"--ckpt": "ckpt", "--train-dir": "train_dir", "--eval-dir": "eval_dir"},
        required=["ckpt", "train_dir", "eval_dir"],
        types={"ckpt": local("--checkpoint"), "train_dir": local("--train", what="a local ImageFolder"),
               "eval_dir": local("--eval", what="a local ImageFolder"), "out": local("--out", what="a local directory")},
    )


def build_command(subcommand: str = "train") -> Command:
    return _train_command() if subcommand == "train" else _transfer_command()


def build_parser() -> argparse.ArgumentParser:
    """A parser with both subcommands (for ``--help`` and the docs)."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        cmd = build_command(name)
        sub.add_parser(name, parents=[cmd.parser], add_help=False, help=cmd.parser.description)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        build_parser().parse_args(argv)  # prints the help and exits
    command = argv.pop(0) if argv and argv[0] in SUBCOMMANDS else "train"  # plain flags mean train
    args = build_command(command).parse(argv)
    args.command = command
    return args


def _rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def _train(args: argparse.Namespace) -> int:
    from synthdata.pretrain import train

    cfg = build_command("train").build(TrainConfig, args, TRAIN_RECIPES)
    summary = train(cfg)
    if summary.get("preempted"):
        if _rank() == 0:
            print(
                f"preempted by {summary['preempted']} after update {summary['preempted_at_update']} "
                f"({summary['completed_epochs']}/{summary['epochs']} epochs complete); checkpoint "
                f"{summary['checkpoint']}; exit code {cfg.preempt_exit_code}: rerun the same command to resume"
            )
        return cfg.preempt_exit_code
    if _rank() == 0:
        loss = summary["final_train_loss"]
        print(
            f"{'finished' if summary['finished'] else 'stopped'} after epoch {summary['completed_epochs']}"
            f"/{summary['epochs']}"
            + (f", final train loss {loss:.4f}" if loss is not None else "")
            + f"; checkpoint {summary['checkpoint']}"
        )
    return 0


def _transfer(args: argparse.Namespace) -> int:
    from synthdata.pretrain import transfer

    result = transfer(build_command("transfer").build(TransferConfig, args, TRANSFER_RECIPES))
    print(
        f"{result['mode']} {result['model']} on {result['train_dir']} ({result['epochs']} epochs): "
        f"top-1 {result['top1']:.2f}% (best {result['best_top1']:.2f}%), top-5 {result['top5']:.2f}% "
        f"on {result['eval_images']} images"
    )
    print(json.dumps({k: result[k] for k in ("top1", "top5", "best_top1", "written_to")}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    others = _rank() > 0  # progress is logged by rank 0
    setup_logging(args.verbose and not others, args.quiet or others)
    body = _train if args.command == "train" else _transfer

    def run() -> int:
        from synthdata.pretrain import PretrainError
        from synthdata.shards import ShardError

        try:
            return body(args)
        except (PretrainError, ShardError) as exc:
            raise ValueError(str(exc)) from exc

    return run_cli(PROG, run, (ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
