"""synth-generate: prompts (JSONL from synth-prompts) → GLIDE images → WebDataset shards.

Runs on every process of a torchrun or Slurm job (RANK/WORLD_SIZE or SLURM_PROCID/SLURM_NTASKS); rerun the
same command to resume: complete shards are kept, incomplete ones redone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path

from synthdata.diffusion.runner import (
    PAPER_BASE_RESPACING,
    PAPER_UP_RESPACING,
    SMOKE_BASE_RESPACING,
    SMOKE_UP_RESPACING,
    GenerateConfig,
    GenerateError,
    run_generation,
    run_line,
)
from synthdata.prompts import PromptsError, load_class_list, read_prompts
from synthdata.shards import ShardError
from synthdata.shards.atomic import atomic_write_json
from synthdata.tools._common import run_cli, setup_logging

PROG = "synth-generate"
log = logging.getLogger(PROG)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    io = parser.add_argument_group("input and output")
    io.add_argument("--prompts", type=Path, required=True, help="prompts JSONL file (from synth-prompts)")
    io.add_argument("--out", required=True, help="output shard directory (local; created if missing)")
    io.add_argument(
        "--classes", type=Path, help="full class list (txt/JSON/CSV) when the prompts cover only some"
    )
    io.add_argument(
        "--format", default="png", choices=["png", "jpg", "webp"], help="image format (default png)"
    )
    io.add_argument("--quality", type=int, help="jpg/webp quality 1-100 (default 95)")
    io.add_argument("--shard-size", type=int, help="images per shard (default 1000 at 64 px, 250 at 256 px)")
    io.add_argument(
        "--name", default="", help="dataset name in dataset.json (default: the --out folder name)"
    )

    gen = parser.add_argument_group("generation (defaults: the paper's settings)")
    gen.add_argument("--images-per-prompt", type=int, default=1, help="replicates of each prompt (default 1)")
    gen.add_argument("--size", type=int, default=64, choices=[64, 256], help="64 (base) or 256 (+upsampler)")
    gen.add_argument(
        "--guidance", type=float, default=3.0, help="classifier-free guidance scale (default 3.0)"
    )
    gen.add_argument(
        "--base-respacing",
        help=f"base sampler steps (default {PAPER_BASE_RESPACING}; {SMOKE_BASE_RESPACING} with --smoke)",
    )
    gen.add_argument(
        "--up-respacing",
        help=f"upsampler DDIM steps (default {PAPER_UP_RESPACING}; {SMOKE_UP_RESPACING} with --smoke)",
    )
    gen.add_argument("--upsample-temp", type=float, default=0.997, help="upsampler noise temperature (0.997)")
    gen.add_argument(
        "--seed", type=int, default=0, help="global seed; item seeds derive from it and item keys"
    )
    gen.add_argument(
        "--real-guidance", type=Path, help="ImageFolder of few-shot real images (a folder per class)"
    )
    gen.add_argument(
        "--shots", type=int, help="reference images per class for Real Guidance (sets start step)"
    )

    run = parser.add_argument_group("execution")
    run.add_argument("--batch-size", type=int, default=32, help="images per model batch, prompts mixed (32)")
    run.add_argument("--device", help="torch device (default cuda:LOCAL_RANK if available, else cpu)")
    run.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], help="default float16 on CUDA")
    run.add_argument(
        "--sampler",
        default="auto",
        choices=["auto", "exact", "fast"],
        help="fast: fixed-batch fused sampler (CUDA graphs, kernels); auto: fast on CUDA, exact elsewhere",
    )
    run.add_argument("--smoke", action="store_true", help="tiny random models (no weights; images are noise)")
    run.add_argument("--cache-dir", help="where GLIDE checkpoints are cached (default ~/.cache/synthdata)")
    run.add_argument("--base-checkpoint", default="glide.base", help="file or name (default glide.base)")
    run.add_argument("--upsample-checkpoint", default="glide.upsample", help="file or name (glide.upsample)")
    run.add_argument("--no-download", action="store_true", help="fail instead of downloading missing weights")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument(
        "--summary-json",
        type=Path,
        help="also write this rank's summary as JSON here (every rank's is in --out, merged into "
        "--out/summary.json by the last rank to finish)",
    )
    run.add_argument("-v", "--verbose", action="store_true")
    return parser


def _read_prompts(path: Path) -> list:
    if not path.is_file():
        raise GenerateError(f"--prompts {path} does not exist; write one with synth-prompts")
    records = read_prompts(path)
    if not records:
        raise GenerateError(f"--prompts {path} holds no prompts; write some with synth-prompts")
    return records


def _run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    config = GenerateConfig(
        out=str(args.out),
        images_per_prompt=args.images_per_prompt,
        size=args.size,
        guidance=args.guidance,
        base_respacing=args.base_respacing,
        up_respacing=args.up_respacing,
        upsample_temp=args.upsample_temp,
        batch_size=args.batch_size,
        image_format=args.format,
        quality=args.quality,
        seed=args.seed,
        shard_size=args.shard_size,
        name=args.name,
        smoke=args.smoke,
        real_guidance=str(args.real_guidance) if args.real_guidance is not None else None,
        shots=args.shots,
        device=args.device,
        dtype=args.dtype,
        sampler=args.sampler,
        cache_dir=args.cache_dir,
        base_checkpoint=args.base_checkpoint,
        upsample_checkpoint=args.upsample_checkpoint,
        download=not args.no_download,
    )
    config.resolved()  # check the settings before reading anything
    records = _read_prompts(args.prompts)
    classes = list(load_class_list(args.classes)) if args.classes is not None else None
    summary = run_generation(
        config, records, classes=classes, progress=not args.no_progress, prompts_source=str(args.prompts)
    )
    if args.summary_json is not None:
        atomic_write_json(args.summary_json, summary.to_json(), mkdir=True)
    print(summary.line())
    if summary.run_summary is not None:  # this rank finished last: the whole run's figures
        with contextlib.suppress(OSError, ValueError, KeyError):
            print(run_line(json.loads(Path(summary.run_summary).read_text(encoding="utf-8"))))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(PROG, lambda: _run(args), (GenerateError, PromptsError, ShardError, ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
