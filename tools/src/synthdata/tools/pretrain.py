"""synth-pretrain: pre-train a timm model on shards (torchrun for many GPUs/nodes), then transfer it.

  synth-pretrain [train] --data SHARDS --model resnet50 --out RUN ...      (plain flags mean train)
  synth-pretrain transfer --ckpt RUN/checkpoints/last.pt --train-dir T --eval-dir V --mode finetune

Rerunning a train command with the same --out resumes from RUN/checkpoints/last.pt. On SIGTERM or SIGUSR1
(a scheduler's preemption notice) every rank saves at the next optimizer update and exits with code 143.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from synthdata.pretrain import PretrainError, TrainConfig, TransferConfig, train, transfer
from synthdata.shards import ShardError
from synthdata.tools._common import run_cli, setup_logging

PROG = "synth-pretrain"
SUBCOMMANDS = ("train", "transfer")


# --smoke replaces these defaults (flags given on the command line win): a tiny random timm model on the CPU.
SMOKE = {
    "train": {
        "model": "test_resnet",
        "img_size": 32,
        "epochs": 1,
        "batch_size": 8,
        "workers": 0,
        "device": "cpu",
    },
    "transfer": {"epochs": 1, "batch_size": 8, "workers": 0, "device": "cpu"},
}


def _smoke_help(command: str) -> str:
    return ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in SMOKE[command].items()) + " unless given"


def _train_parser(sub: argparse._SubParsersAction) -> None:
    d = TrainConfig(data="")
    p = sub.add_parser("train", help="pre-train on shards (the default when no subcommand is given)")
    g = p.add_argument_group("data")
    g.add_argument("--data", required=True, help="shard directory with dataset.json, or a shard URL pattern")
    g.add_argument("--num-classes", type=int, help="class count (required for URL patterns)")
    g.add_argument(
        "--resampled", action="store_true", help="draw shards with replacement (needs no full pass)"
    )
    g.add_argument(
        "--epoch-samples", type=int, help="samples per epoch over all ranks (default: dataset size)"
    )
    g.add_argument(
        "--shuffle", type=int, default=d.shuffle, help=f"sample shuffle buffer (default {d.shuffle})"
    )
    g.add_argument(
        "--workers", type=int, default=d.workers, help=f"DataLoader workers per rank ({d.workers})"
    )
    g.add_argument("--on-error", choices=["raise", "warn"], default=d.on_error, help="corrupt samples")
    g.add_argument("--log-keys", action="store_true", help="write OUT/keys/epochNNN-rankNNN.txt (debug)")
    g = p.add_argument_group("model")
    g.add_argument("--model", default=d.model, help=f"any timm model name (default {d.model})")
    g.add_argument("--img-size", type=int, default=d.img_size, help=f"default {d.img_size}")
    g.add_argument("--drop-path", type=float, help="stochastic depth rate")
    g.add_argument("--channels-last", action="store_true")
    g.add_argument("--compile", action="store_true", help="torch.compile the model")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=d.epochs, help=f"default {d.epochs}")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help=f"per rank (default {d.batch_size})")
    g.add_argument("--accum-steps", type=int, default=d.accum_steps, help="gradient accumulation steps")
    g.add_argument("--opt", default=d.opt, help=f"timm optimizer name (default {d.opt})")
    g.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate (default {d.lr})")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay, help=f"default {d.weight_decay}")
    g.add_argument("--momentum", type=float, default=d.momentum, help="for SGD-like optimizers")
    g.add_argument("--sched", default=d.sched, help=f"timm scheduler name (default {d.sched})")
    g.add_argument("--warmup-epochs", type=int, default=d.warmup_epochs)
    g.add_argument("--min-lr", type=float, default=d.min_lr)
    g.add_argument("--clip-grad", type=float, help="clip the gradient norm to this value")
    g = p.add_argument_group("regularisation")
    g.add_argument("--smoothing", type=float, default=d.smoothing, help=f"label smoothing ({d.smoothing})")
    g.add_argument("--mixup", type=float, default=d.mixup, help="mixup alpha (0: off)")
    g.add_argument("--cutmix", type=float, default=d.cutmix, help="cutmix alpha (0: off)")
    g.add_argument("--mixup-prob", type=float, default=d.mixup_prob)
    g.add_argument("--aa", dest="auto_augment", help="timm auto-augment policy, e.g. rand-m9-mstd0.5-inc1")
    g.add_argument("--color-jitter", type=float, default=d.color_jitter)
    g.add_argument("--reprob", type=float, default=d.reprob, help="random erasing probability")
    g = p.add_argument_group("precision, EMA, run")
    g.add_argument(
        "--amp",
        choices=["auto", "none", "bf16", "fp16"],
        default=d.amp,
        help="mixed precision on CUDA (auto: bf16 on CUDA, off on the CPU)",
    )
    g.add_argument("--ema", action="store_true", help="keep an EMA of the weights")
    g.add_argument("--ema-decay", type=float, default=d.ema_decay)
    g.add_argument("--device", choices=["cpu", "cuda"], default=d.device)
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--out", default=d.out, help=f"run directory (default {d.out})")
    g.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="refuse to start if OUT already holds a checkpoint",
    )
    g.add_argument("--keep-checkpoints", type=int, default=d.keep_checkpoints, help="epoch files to keep")
    g.add_argument(
        "--save-every-steps",
        type=int,
        default=d.save_every_steps,
        metavar="N",
        help="also checkpoint every N optimizer updates inside an epoch; a rerun resumes there (0: epoch ends)",
    )
    g.add_argument(
        "--preempt-signals",
        default=d.preempt_signals,
        metavar="SIGS",
        help=f"on these signals every rank saves at the next update and stops (default {d.preempt_signals}; "
        "none: off)",
    )
    g.add_argument(
        "--preempt-exit-code",
        type=int,
        default=d.preempt_exit_code,
        metavar="CODE",
        help=f"exit status after such a stop, for the scheduler's requeue rules (default {d.preempt_exit_code})",
    )
    g.add_argument("--log-every", type=int, default=d.log_every, help="metrics line every N updates")
    g.add_argument(
        "--stop-after-epochs", type=int, help="stop this invocation after N epochs; rerun to go on"
    )
    g.add_argument("-v", "--verbose", action="store_true")
    g.add_argument(
        "--smoke", action="store_true", help=f"check an install on the CPU: {_smoke_help('train')}"
    )


def _transfer_parser(sub: argparse._SubParsersAction) -> None:
    d = TransferConfig(ckpt="", train_dir="", eval_dir="")
    p = sub.add_parser(
        "transfer", help="fine-tune or linear-probe a checkpoint on an ImageFolder; report top-1"
    )
    p.add_argument("--ckpt", required=True, help="a pre-training checkpoint (RUN/checkpoints/last.pt)")
    p.add_argument("--train-dir", required=True, help="ImageFolder: one sub-directory of images per class")
    p.add_argument("--eval-dir", required=True, help="ImageFolder with the same class sub-directories")
    p.add_argument("--mode", choices=["finetune", "linear"], default=d.mode)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, help="default 1e-4 (finetune) or 1e-3 (linear), AdamW")
    p.add_argument("--weight-decay", type=float, help="default 0.05 (finetune) or 0 (linear)")
    p.add_argument("--img-size", type=int, help="default: the pre-training size")
    p.add_argument("--use-ema", action="store_true", help="start from the checkpoint's EMA weights")
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--device", choices=["cpu", "cuda"], default=d.device)
    p.add_argument("--amp", choices=["auto", "none", "bf16", "fp16"], default=d.amp)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", help="where transfer.jsonl goes (default: the checkpoint's run directory)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument(
        "--smoke", action="store_true", help=f"check an install on the CPU: {_smoke_help('transfer')}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _transfer_parser(sub)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*SUBCOMMANDS, "-h", "--help"):
        argv = ["train", *argv]  # plain flags mean train
    args = build_parser().parse_args(argv)
    if args.smoke:
        given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
        for name, value in SMOKE[args.command].items():
            if f"--{name.replace('_', '-')}" not in given:
                setattr(args, name, value)
    return args


def _config_kwargs(args: argparse.Namespace, cls: type) -> dict:
    names = set(cls.__dataclass_fields__)
    return {k: v for k, v in vars(args).items() if k in names}


def _rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def _train(args: argparse.Namespace) -> int:
    cfg = TrainConfig(**_config_kwargs(args, TrainConfig))
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
    result = transfer(TransferConfig(**_config_kwargs(args, TransferConfig)))
    print(
        f"{result['mode']} {result['model']} on {result['train_dir']} ({result['epochs']} epochs): "
        f"top-1 {result['top1']:.2f}% (best {result['best_top1']:.2f}%), top-5 {result['top5']:.2f}% "
        f"on {result['eval_images']} images"
    )
    print(json.dumps({k: result[k] for k in ("top1", "top5", "best_top1", "written_to")}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    if _rank() > 0:
        logging.getLogger().setLevel(logging.WARNING)  # progress is logged by rank 0
    body = _train if args.command == "train" else _transfer
    return run_cli(PROG, lambda: body(args), (PretrainError, ShardError, ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
