"""Shard write and read throughput (images/s on one core) for PNG/JPEG/WebP at 64 and 256 px.

    uv run python benchmarks/bench_shards.py [--images 200] [--smoke]

Writes ``benchmarks/results/shards_cpu.json`` (``--smoke``: a few images, no file written).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_results

from synthdata.shards import Sample, ShardWriter, draw_demo_image, iter_samples


def bench(fmt: str, size: int, n: int, root: Path) -> dict:
    images = [draw_demo_image(i % 7, np.random.default_rng(i), size) for i in range(n)]
    out = root / f"{fmt}-{size}"
    t0 = time.perf_counter()
    with ShardWriter(out, max_count=max(1, n // 2), image_format=fmt) as writer:
        for i, image in enumerate(images):
            writer.write(Sample(f"k{i:06d}", image, i % 7, {"i": i}))
    t_write = time.perf_counter() - t0
    nbytes = sum(info.nbytes for info in writer.shards)
    t0 = time.perf_counter()
    count = sum(1 for _ in iter_samples(out))  # checksum + full decode to RGB
    t_read = time.perf_counter() - t0
    assert count == n
    return {
        "format": fmt,
        "size": size,
        "images": n,
        "write_images_per_s": n / t_write,
        "read_images_per_s": n / t_read,
        "kb_per_image": nbytes / n / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="a few images, no result file")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    n = 8 if args.smoke else args.images
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (64, 256):
            for fmt in ("png", "jpg", "webp"):
                rows.append(bench(fmt, size, n, Path(tmp)))
    print_table(rows, ["format", "size", "images", "write_images_per_s", "read_images_per_s", "kb_per_image"])
    if not args.smoke:
        print(
            f"wrote {write_results('shards_cpu', rows, {'note': 'one process, images drawn by make-demo'})}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
