"""Shard throughput: write and read images/s per format, and the same shards through object storage.

    uv run python benchmarks/bench_shards.py [--images 200] [--remote-images 2000] [--smoke]

Part one: write and read (checksum + decode) images/s on one core for PNG/JPEG/WebP at 64 and 256 px. Part two
(needs the dev dependencies moto[server] and s3fs): 64 px PNG shards copied to and from a local S3-compatible
server (moto on 127.0.0.1) against a local-disk copy (MB/s), and the training loader
(``synthdata.shards.wds_pipeline``: open, untar, decode to tensors) in images/s from local disk, from an HTTP
server and from S3 on the same shards. Both servers run in this process on loopback, so the figures measure
what the storage layer costs on one core, not a network. Writes ``benchmarks/results/shards_cpu.json``
(``--smoke``: a few images, no file written).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
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


def _servers(root: Path) -> tuple[str, Callable[[], None]]:
    """A moto S3 server (the ``AWS_*`` environment points s3fs at it) and an HTTP server over ``root``, both on
    127.0.0.1 at free ports; returns the HTTP server's URL and a function that stops both."""
    import functools
    import logging
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3.start()

    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(QuietHandler, directory=str(root))
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    host, port = s3.get_host_and_port()
    os.environ.update(AWS_ENDPOINT_URL=f"http://{host}:{port}", AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")

    def stop() -> None:
        http.shutdown()
        s3.stop()

    return f"http://127.0.0.1:{http.server_address[1]}", stop


def _mb_per_s(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6 if seconds > 0 else 0.0


def _loader_images_per_s(source: str) -> tuple[float, int]:
    from torchvision.transforms.functional import pil_to_tensor

    from synthdata.shards import wds_pipeline

    t0 = time.perf_counter()
    n = sum(1 for _ in wds_pipeline(source, transform=pil_to_tensor, shuffle=0, split_by_node=False))
    return n / (time.perf_counter() - t0), n


def bench_remote(n: int, root: Path) -> list[dict]:
    """Copy throughput to/from S3 vs local disk, and loader images/s from disk, HTTP and S3."""
    import shutil

    import fsspec

    from synthdata.shards import ShardDataset, make_demo, storage

    data = make_demo(root / "www" / "demo", classes=10, per_class=max(1, n // 10), size=64, shard_size=max(1, n // 8))
    files = sorted(p for p in data.iterdir() if p.is_file())
    nbytes = sum(p.stat().st_size for p in files)
    samples = ShardDataset.open(str(data)).num_samples
    http, stop = _servers(root / "www")
    try:
        fsspec.filesystem("s3").mkdir("bench")
        t0 = time.perf_counter()
        shutil.copytree(data, root / "copy")
        disk_up = time.perf_counter() - t0
        t0 = time.perf_counter()
        for p in files:
            storage.upload(p, f"s3://bench/demo/{p.name}")
        s3_up = time.perf_counter() - t0
        t0 = time.perf_counter()
        disk_bytes = sum(len((root / "copy" / p.name).read_bytes()) for p in files)
        disk_down = time.perf_counter() - t0
        t0 = time.perf_counter()
        s3_bytes = sum(len(storage.read_bytes(f"s3://bench/demo/{p.name}")) for p in files)
        s3_down = time.perf_counter() - t0
        assert disk_bytes == s3_bytes == nbytes
        rows = [
            {"what": "copy to (MB/s)", "local disk": _mb_per_s(nbytes, disk_up), "s3": _mb_per_s(nbytes, s3_up)},
            {"what": "copy from (MB/s)", "local disk": _mb_per_s(nbytes, disk_down), "s3": _mb_per_s(nbytes, s3_down)},
        ]
        loader = {"what": "loader (images/s)"}
        for name, source in (("local disk", str(data)), ("http", f"{http}/demo"), ("s3", "s3://bench/demo")):
            ips, count = _loader_images_per_s(source)
            assert count == samples
            loader[name] = ips
        rows.append(loader)
    finally:
        stop()
    shards = sum(p.suffix == ".tar" for p in files)
    for row in rows:
        row.update(shards=shards, megabytes=round(nbytes / 1e6, 2))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--remote-images", type=int, default=2000, help="images for the object-storage rows")
    parser.add_argument("--smoke", action="store_true", help="a few images, no result file")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    n = 8 if args.smoke else args.images
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (64, 256):
            for fmt in ("png", "jpg", "webp"):
                rows.append(bench(fmt, size, n, Path(tmp)))
        remote = bench_remote(16 if args.smoke else args.remote_images, Path(tmp))
    print_table(rows, ["format", "size", "images", "write_images_per_s", "read_images_per_s", "kb_per_image"])
    print_table(remote, ["what", "local disk", "http", "s3", "shards", "megabytes"])
    if not args.smoke:
        note = {"note": "one process, images drawn by make-demo; S3 (moto) and HTTP servers in-process on loopback",
                "remote": remote}
        print(f"wrote {write_results('shards_cpu', rows, note)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
