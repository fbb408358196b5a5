"""Language Enhancement throughput: unique sentences/s batched against one sentence per ``generate`` call
(the paper's script), with the tiny random T5 of ``--smoke`` on the CPU.

    uv run python benchmarks/bench_prompts.py [--classes 10] [--per-class 32] [--threads 1] [--smoke]
    uv run python benchmarks/bench_prompts.py --model mrm8488/t5-base-finetuned-common_gen --device cuda

Writes ``benchmarks/results/prompts_<device>.json`` (``--smoke``: a few sentences, no file written).
The tiny model measures the batching and bookkeeping overhead, not the real T5-base's speed; its sentences
are random words. With ``--model`` (a cached hub id or a local directory) the real model is timed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_results

from synthdata.prompts import get_dataset
from synthdata.prompts.le import LanguageEnhancer, LEConfig

# (label, batch_size, num_return_sequences, oversample); the first is the paper's one sentence per call
MODES = [
    ("one per call", 1, 1, 1.0),
    ("batch 16", 16, 16, 1.5),
    ("batch 64", 64, 16, 1.5),
    ("batch 256 (default)", 256, 16, 1.5),
]


class CountingEnhancer(LanguageEnhancer):
    """Counts the sequences sampled (kept or not) and the generate calls."""

    sampled = 0

    def _generate(self, texts, n, cfg, seed):
        out = super()._generate(texts, n, cfg, seed)
        self.sampled += len(out)
        return out


def _enhancer(args, names) -> CountingEnhancer:
    if args.model:
        base = LanguageEnhancer.from_pretrained(args.model, device=args.device)
    else:
        base = LanguageEnhancer.smoke(names, device=args.device)
    return CountingEnhancer(base.model, base.tokenizer, device=base.device, model_id=base.model_id)


def bench(enh: CountingEnhancer, names, per_class: int, mode, max_new_tokens: int, seed: int) -> dict:
    label, batch, nrs, oversample = mode
    cfg = LEConfig(
        per_class=per_class,
        batch_size=batch,
        num_return_sequences=nrs,
        oversample=oversample,
        max_new_tokens=max_new_tokens,
        seed=seed,
    )
    enh.sampled = 0
    if enh.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    res = enh.generate(names, cfg)
    if enh.device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    kept = sum(len(s) for s in res.sentences)
    return {
        "mode": label,
        "batch_size": batch,
        "classes": len(names),
        "per_class": per_class,
        "sentences": kept,
        "sampled": enh.sampled,
        "calls": res.calls,
        "wall_s": wall,
        "sentences_per_s": kept / wall,
        "sampled_per_s": enh.sampled / wall,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=10, help="the first N CIFAR-100 classes (default 10)")
    parser.add_argument("--per-class", type=int, default=32, help="unique sentences per class (default 32)")
    parser.add_argument("--max-new-tokens", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--model", help="a real seq2seq model (cached hub id or directory) instead of the tiny one")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a few sentences, no result file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    n_cls, per_class = (4, 4) if args.smoke else (args.classes, args.per_class)
    names = list(get_dataset("cifar100").classnames[:n_cls])
    enh = _enhancer(args, names)
    enh.generate(names[:2], LEConfig(per_class=2, max_new_tokens=args.max_new_tokens))  # warm-up
    rows = [bench(enh, names, per_class, mode, args.max_new_tokens, args.seed) for mode in MODES]
    for r in rows:
        r["speedup"] = r["sentences_per_s"] / rows[0]["sentences_per_s"]
    print_table(rows, ["mode", "calls", "sentences", "sampled", "wall_s", "sentences_per_s", "speedup"])
    best = max(rows[1:], key=lambda r: r["speedup"])
    print(f"batched ({best['mode']}) is {best['speedup']:.1f}x one sentence per call, on {enh.device}")
    if not args.smoke:
        extra = {
            "model": enh.model_id,
            "max_new_tokens": args.max_new_tokens,
            "note": "unique sentences/s (kept after de-duplication) on the listed device; the smoke model is a "
            "2-layer d32 random T5, so this measures batching against per-call overhead, not T5-base speed",
        }
        tag = "cpu" if enh.device.type == "cpu" else "gpu"
        name = f"prompts_{tag}" if not args.model else f"prompts_{tag}_{Path(args.model).name}"
        print(f"wrote {write_results(name, rows, extra)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
