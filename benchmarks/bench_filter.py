"""CLIP filtering throughput: synth-filter's batched scoring against a paper-style one-image-at-a-time loop.

    uv run python benchmarks/bench_filter.py [--classes 10 50] [--per-class 2] [--loop-images 4] [--smoke]

The loop is what the paper's script does for every image: load and preprocess it, tokenize and encode every
class prompt again, encode the image, softmax over the classes. Its cost grows with the number of classes.
Both sides use the same model (random weights: no download needed, the cost is the same) on the same device.

Rows (per class count): ``loop`` (steady-state time per image, timed on ``--loop-images`` images after
one warm-up, times the number of images: the loop is linear in it), ``batched`` (``score_shards`` with the model already
loaded: steady state, text head included), and ``process`` (the whole ``synth-filter`` command as a
subprocess over the whole dataset: interpreter start, imports, model loading, scoring, selection and output
shards), each with its speed-up over the loop in wall time and in CPU time (process plus finished
children: the fair figure on a shared, oversubscribed machine). Writes ``benchmarks/results/filter_<device>.json``
(``--smoke``: the tiny model, a few images, no ``process`` row, no file written).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_json, write_results

from synthdata.clip import DEFAULT_TEMPLATES, ClipBundle, load_clip
from synthdata.filter import score_shards
from synthdata.shards import iter_samples, make_demo, read_dataset_json


@torch.no_grad()
def paper_loop(bundle: ClipBundle, samples: list, classnames: list[str]) -> list[float]:
    """One image at a time, every class prompt tokenized and encoded again for each image."""
    model, confidences = bundle.model, []
    for s in samples:
        image = bundle.preprocess(s.image).unsqueeze(0).to(bundle.device, bundle.dtype)
        text = bundle.tokenizer([f"a photo of a {c}." for c in classnames]).to(bundle.device)
        image_feats = model.encode_image(image).float()
        text_feats = model.encode_text(text).float()
        image_feats = image_feats / image_feats.norm(dim=-1, keepdim=True)
        text_feats = text_feats / text_feats.norm(dim=-1, keepdim=True)
        probs = (model.logit_scale.exp().float() * image_feats @ text_feats.T).softmax(dim=-1)
        confidences.append(float(probs[0, s.cls]))
    return confidences


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class _Clock:
    """Wall seconds, and CPU seconds of this process plus its finished children (loader workers,
    subprocesses): on a shared, oversubscribed machine the CPU figures are the fair comparison."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> _Clock:
        _sync(self.device)
        self._wall, self._cpu = time.perf_counter(), _cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        _sync(self.device)
        self.wall = time.perf_counter() - self._wall
        self.cpu = _cpu_seconds() - self._cpu


def _cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def bench_classes(
    bundle: ClipBundle, args: argparse.Namespace, classes: int, root: Path, device: str
) -> list[dict]:
    src = make_demo(root / f"demo{classes}", classes=classes, per_class=args.per_class, size=64)
    names = read_dataset_json(src).classes
    n = classes * args.per_class
    samples = list(iter_samples(src))
    timed = samples[1 : 1 + args.loop_images]
    paper_loop(bundle, samples[:1], names)  # warm-up
    with _Clock(bundle.device) as loop:
        paper_loop(bundle, timed, names)

    score_shards(src, bundle, names, DEFAULT_TEMPLATES, batch_size=args.batch_size, num_workers=1)  # warm-up
    with _Clock(bundle.device) as batched:
        result = score_shards(
            src, bundle, names, DEFAULT_TEMPLATES, batch_size=args.batch_size, num_workers=1
        )
    assert len(result.scores) == n

    out = root / f"out{classes}"
    cmd = [
        sys.executable,
        "-m",
        "synthdata.tools.filter",
        "--in",
        str(src),
        "--out",
        str(out),
        "--classes-from-shards",
        "--clip-model",
        args.model,
        "--clip-pretrained",
        "none",
        "--keep-per-class",
        str(min(2, args.per_class)),
        "--device",
        device,
        "--batch-size",
        str(args.batch_size),
    ]
    process = None
    if not args.smoke:  # the command's start-up alone would take most of a smoke run
        with _Clock(bundle.device) as process:
            subprocess.run(cmd, check=True, capture_output=True)

    loop_wall, loop_cpu = loop.wall / len(timed) * n, loop.cpu / len(timed) * n
    common = {"model": args.model, "classes": classes, "images": n}

    def row(method: str, wall: float, cpu: float) -> dict:
        return common | {
            "method": method,
            "s_per_image": wall / n,
            "images_per_s": n / wall,
            "wall_s_all": wall,
            "cpu_s_all": cpu,
            "speedup_wall": loop_wall / wall,
            "speedup_cpu": loop_cpu / cpu,
        }

    loop_row = row("loop (paper-style)", loop_wall, loop_cpu) | {"loop_images_timed": len(timed)}
    return [
        loop_row,
        row("batched (model loaded)", batched.wall, batched.cpu),
    ] + ([row("synth-filter process", process.wall, process.cpu)] if process is not None else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default="RN50", help="open_clip architecture, random weights (default RN50)"
    )
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--per-class", type=int, default=2)
    parser.add_argument("--loop-images", type=int, default=4, help="images the slow loop is timed on")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--smoke", action="store_true", help="tiny model, a few images, no result file")
    parser.add_argument("--json", default=None, help="also write the rows to this file (smoke too)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.classes, args.per_class, args.loop_images = "synthdata-tiny-rn", [3], 2, 2
    load_before = os.getloadavg()
    bundle = load_clip(args.model, "none", device=args.device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for classes in args.classes:
            rows += bench_classes(bundle, args, classes, Path(tmp), args.device)
    columns = ["classes", "images", "method", "s_per_image", "wall_s_all", "cpu_s_all", "speedup_wall"]
    print_table(rows, [*columns, "speedup_cpu"])
    if args.json:
        write_json(args.json, rows, {"device": args.device})
    if not args.smoke:
        kind = "gpu" if args.device.startswith("cuda") else "cpu"
        extra = {
            "note": "loop *_s_all = steady-state time per image x images (the loop is linear); cpu_s = CPU "
            "seconds of the process and its finished children (workers, subprocess)",
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        }
        path = write_results(f"filter_{kind}", rows, extra)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
