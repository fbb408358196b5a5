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

from synthdata.diffusion.runner._config import RECIPES, GenerateConfig
from synthdata.tools._cli import Command
from synthdata.tools._cli.paths import local, location
from synthdata.tools._common import run_cli, setup_logging

PROG = "synth-generate"
log = logging.getLogger(PROG)
_PRECISION_OF_DTYPE = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def build_command() -> Command:
    cmd = Command(PROG, __doc__)
    g = cmd.group("input and output")
    cmd.add("prompts_file", group=g, required=True, type=location("--prompts"))
    cmd.add_fields(GenerateConfig, group=g, only=["out"], required=["out"],
                   types={"out": location("--out", write=True)})
    cmd.add("classes_file", group=g, type=local("--classes"), default=None,
            help="full class list (txt/JSON/CSV) when the prompts cover only some classes")
    cmd.add_fields(GenerateConfig, group=g, only=["image_format", "quality", "shard_size", "name"])
    g = cmd.group("generation (defaults: the paper's settings)")
    cmd.add_fields(GenerateConfig, group=g, only=[
        "images_per_prompt", "size", "guidance", "base_respacing", "up_respacing", "upsample_temp", "seed",
        "real_guidance", "shots", "reference_preprocessing",
    ])
    g = cmd.group("execution")
    cmd.add_fields(GenerateConfig, group=g, only=[
        "batch_size", "device", "dtype", "sampler", "cache_dir", "base_checkpoint", "upsample_checkpoint",
        "download",
    ])
    cmd.add("summary_json", group=g, type=local("--summary-json"), default=None, metavar="FILE",
            help="also write this rank's summary as JSON here (every rank's is in --out, merged into "
            "--out/summary.json by the last rank to finish)")
    cmd.add_recipes(GenerateConfig, RECIPES)
    cmd.add_run_options()
    cmd.deprecate("--real-guidance", "real_guidance")
    cmd.deprecate("--dtype", "dtype", convert=lambda v: _PRECISION_OF_DTYPE.get(v, v))
    cmd.deprecate("--cache-dir", "cache_dir")
    cmd.deprecate("--no-progress", "quiet")
    return cmd


def build_parser() -> argparse.ArgumentParser:
    return build_command().parser


def _read_prompts(path: str) -> list:
    from synthdata.diffusion.runner import GenerateError
    from synthdata.prompts import read_prompts
    from synthdata.shards import storage

    if not storage.exists(path):
        raise GenerateError(f"--prompts {path} does not exist; write one with synth-prompts")
    records = read_prompts(path)
    if not records:
        raise GenerateError(f"--prompts {path} holds no prompts; write some with synth-prompts")
    return records


def _run(cmd: Command, args: argparse.Namespace) -> int:
    from synthdata.diffusion.runner import run_generation, run_line
    from synthdata.prompts import load_class_list
    from synthdata.shards import storage
    from synthdata.shards.atomic import atomic_write_json

    setup_logging(args.verbose, args.quiet)
    config = cmd.build(GenerateConfig, args, RECIPES)
    config.resolved()  # check the settings before reading anything
    records = _read_prompts(args.prompts_file)
    classes = list(load_class_list(args.classes_file)) if args.classes_file is not None else None
    summary = run_generation(
        config, records, classes=classes, progress=not args.quiet, prompts_source=str(args.prompts_file)
    )
    if args.summary_json is not None:
        atomic_write_json(args.summary_json, summary.to_json(), mkdir=True)
    print(summary.line())
    if summary.run_summary is not None:  # this rank finished last: the whole run's figures
        with contextlib.suppress(OSError, ValueError, KeyError):
            print(run_line(json.loads(storage.read_text(summary.run_summary))))
    return 0


def main(argv: list[str] | None = None) -> int:
    cmd = build_command()
    args = cmd.parse(argv)

    def body() -> int:
        from synthdata.diffusion.runner import GenerateError
        from synthdata.prompts import PromptsError
        from synthdata.shards import ShardError

        try:
            return _run(cmd, args)
        except (GenerateError, PromptsError, ShardError) as exc:
            raise ValueError(str(exc)) from exc

    return run_cli(PROG, body, (ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
