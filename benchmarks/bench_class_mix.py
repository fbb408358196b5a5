"""How many classes a training batch sees: the generation plan's order x the loader's shuffle buffer.

Prompts files list their prompts class by class; a plan that kept that order would give shards of a few
classes each, and a shuffle buffer smaller than a shard then feeds batches of a few classes. This counts the
distinct classes in every batch of one epoch through the same stages as ``synthdata.shards.wds_pipeline``
(seeded shard shuffle, then webdataset's sample buffer) and prints the median per batch, for the plan's
order with and without its seeded permutation, against the ``C (1 - (1 - 1/C)^B)`` of independent draws.

    uv run python benchmarks/bench_class_mix.py [--classes 100 --prompts-per-class 200 --images-per-prompt 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import webdataset as wds

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, write_json

from synthdata.diffusion.runner import Prompt, cut_shards, plan_items
from synthdata.shards.pipeline import SHUFFLE_BUFFER, SeededSampleShuffle, shuffle_initial


def _prompts(classes: int, per_class: int) -> list[Prompt]:
    return [Prompt(f"c{c:04d}-{n:05d}", c, f"class {c}", f"a photo of class {c}, {n}")
            for c in range(classes) for n in range(per_class)]


def _unpermuted(items: list) -> list:
    """The plan's order without the permutation: each replicate block back in prompts-file order."""
    return sorted(items, key=lambda it: (it.replicate, it.prompt.id))


def batch_coverage(items: list, *, shard_size: int, shuffle: int, initial: int, batch: int, seed: int) -> list[int]:
    """Distinct classes per batch over one epoch (1 rank, 1 worker), as the training loader reads them."""
    shards = cut_shards(items, shard_size)
    order = list(wds.detshuffle(bufsize=len(shards), initial=len(shards), seed=seed).run(iter(shards)))
    stream = ({"cls": it.prompt.class_index} for shard in order for it in shard.items)
    shuffled = SeededSampleShuffle(shuffle, initial, seed).run(stream) if shuffle else stream
    out, current = [], set()
    for n, sample in enumerate(shuffled, 1):
        current.add(sample["cls"])
        if n % batch == 0:
            out.append(len(current))
            current = set()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--prompts-per-class", type=int, default=200)
    p.add_argument("--images-per-prompt", type=int, default=5)
    p.add_argument("--shard-size", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="a tiny plan (CI)")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/class_mix.json"))
    args = p.parse_args(argv)
    if args.smoke:
        args.classes, args.prompts_per_class, args.images_per_prompt, args.shard_size = 10, 20, 2, 50
    permuted = plan_items(_prompts(args.classes, args.prompts_per_class), images_per_prompt=args.images_per_prompt,
                          seed=args.seed)
    orders = {"prompts order (before)": _unpermuted(permuted), "seeded permutation (now)": permuted}
    now = (SHUFFLE_BUFFER, shuffle_initial(SHUFFLE_BUFFER))
    buffers = {"1000, initial 100 (before)": (1000, 100), f"{now[0]}, initial {now[1]} (timm; now)": now}
    independent = args.classes * (1 - (1 - 1 / args.classes) ** args.batch_size)
    rows = []
    for order_name, items in orders.items():
        for buffer_name, (size, initial) in buffers.items():
            cov = batch_coverage(items, shard_size=args.shard_size, shuffle=size, initial=initial,
                                 batch=args.batch_size, seed=args.seed)
            rows.append({"plan order": order_name, "shuffle buffer": buffer_name, "batches": len(cov),
                         "median classes/batch": statistics.median(cov), "min": min(cov),
                         "independent draws": round(independent, 1)})
    print_table(rows, list(rows[0]))
    setting = {k: getattr(args, k) for k in ("classes", "prompts_per_class", "images_per_prompt", "shard_size",
                                             "batch_size", "seed")}
    if not args.smoke:
        write_json(args.json, rows, {"setting": setting})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
