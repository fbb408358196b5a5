"""One GLIDE base (64 px) and upsampler (256 px) forward on the CPU, float32, with FLOP counts.

    uv run python benchmarks/bench_glide_forward.py [--batch 1] [--repeats 2] [--smoke]

Official-size models (random weights: speed does not depend on them) unless ``--smoke``, which times the
tiny test architectures in seconds and writes no file. Writes ``benchmarks/results/glide_forward_cpu.json``.
FLOPs are counted by ``torch.utils.flop_counter`` (one multiply-add = 2 FLOP) per sample; with classifier-free
guidance each base step costs two forwards. CPU figures only: GPU numbers must come from a GPU run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_results

from synthdata.diffusion.model import create_model
from synthdata.diffusion.options import base_options, smoke_options, upsample_options
from synthdata.diffusion.tokenizer import get_tokenizer


def bench(role: str, smoke: bool, batch: int, repeats: int) -> dict:
    opts = smoke_options(role) if smoke else (base_options() if role == "base" else upsample_options())
    model = create_model(opts, seed=0)
    size = opts.image_size
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=g)
    t = torch.full((batch,), 500, dtype=torch.long)
    tokens, mask = get_tokenizer().batch(["a photo of a cat"] * batch, opts.text_ctx)
    inputs = {"low_res": torch.randn(batch, 3, size // 4, size // 4, generator=g)} if opts.super_res else {}
    with torch.no_grad():
        emb = model.encode_text(tokens, mask)
        with FlopCounterMode(display=False) as counter:  # also the warm-up
            model(x, t, text_emb=emb, **inputs)
        flops = counter.get_total_flops() / batch
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(x, t, text_emb=emb, **inputs)
            times.append(time.perf_counter() - start)
    best = min(times)
    return {
        "model": f"glide.{role}" + (" (smoke)" if smoke else ""),
        "size": size,
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "batch": batch,
        "gflop_per_sample": flops / 1e9,
        "seconds_per_forward": best,
        "gflop_per_s": flops * batch / best / 1e9,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny models, seconds, no result file")
    args = parser.parse_args(argv)
    rows = [bench(role, args.smoke, args.batch, 1 if args.smoke else args.repeats) for role in ("base", "upsample")]
    print_table(rows, ["model", "size", "params_M", "batch", "gflop_per_sample", "seconds_per_forward", "gflop_per_s"])
    if not args.smoke:
        note = "float32 eager forward on the CPU, text embedding precomputed; random weights of the official configs"
        print(f"wrote {write_results('glide_forward_cpu', rows, {'note': note})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
