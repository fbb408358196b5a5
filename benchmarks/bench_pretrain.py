"""Pre-training data path and training throughput: the shard loader alone, then a short ``train()`` run.

    uv run python benchmarks/bench_pretrain.py                 # GPU: resnet50 at 224 px, 8 loader workers
    uv run python benchmarks/bench_pretrain.py --smoke         # CPU: timm's test_resnet at 32 px, seconds

Demo shards (JPEG, drawn by ``make_demo``) are written to a temporary folder. Rows: ``loader`` (images/s of
``epoch_batches`` over them with ``--workers`` DataLoader workers and a timm training transform, no model:
the ceiling the data path sets) and ``train`` (the last epoch of ``synthdata.pretrain.train``: images/s per
GPU and the share of the epoch spent waiting for data). Writes ``benchmarks/results/pretrain_<device>.json``
(``--smoke``: no file unless ``--json``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import device_slug, print_table, write_json, write_results

from synthdata.pretrain import TrainConfig, plan_epochs, read_metrics, resolve_source, train
from synthdata.pretrain.data import epoch_batches
from synthdata.shards import make_demo

COLUMNS = ["method", "model", "img_size", "batch", "workers", "images", "images_per_s", "data_wait_share"]


def bench_loader(cfg: TrainConfig, epochs: int) -> dict[str, Any]:
    """Images/s of the training loader alone (decode + augment + collate), the last of ``epochs`` epochs."""
    from timm.data import create_transform

    source = resolve_source(cfg.data)
    plan = plan_epochs(source, cfg, world_size=1)
    transform = create_transform(input_size=(3, cfg.img_size, cfg.img_size), is_training=True)
    rate, images = 0.0, 0
    for epoch in range(epochs):  # workers start again every epoch (persistent_workers=False), as in training
        t0, images = time.perf_counter(), 0
        for batch in epoch_batches(source, cfg, plan, epoch, transform):
            images += len(batch[1])
        rate = images / (time.perf_counter() - t0)
    return {"method": "loader", "images": images, "images_per_s": rate, "workers": plan.workers}


def bench_train(cfg: TrainConfig) -> dict[str, Any]:
    """The last epoch of a short ``train()`` run: images/s per GPU and the data-wait share."""
    summary = train(cfg)
    epochs = [r for r in read_metrics(Path(cfg.out) / "metrics.jsonl") if r.get("event") == "epoch"]
    last = epochs[-1] if epochs else summary
    return {
        "method": "train",
        "images": last.get("samples", last.get("images")),
        "images_per_s": last.get("images_per_s_per_gpu"),
        "data_wait_share": last.get("data_wait_share"),
        "run_time_s": summary.get("run_time_s"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny model and images on the CPU, no result file")
    parser.add_argument("--model", default="resnet50", help="timm model (smoke: test_resnet)")
    parser.add_argument("--img-size", type=int, default=224, help="training size (smoke: 32)")
    parser.add_argument("--image-px", type=int, default=256, help="stored image size (smoke: 40)")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--per-class", type=int, default=128, help="demo images per class (smoke: 8)")
    parser.add_argument("--batch-size", type=int, default=64, help="smoke: 8")
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers (smoke: 0)")
    parser.add_argument("--epochs", type=int, default=2, help="the last one is reported")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None)
    parser.add_argument("--json", default=None, help="also write the rows to this file (smoke too)")
    args = parser.parse_args(argv)
    if args.smoke:
        torch.set_num_threads(1)
        args.model, args.img_size, args.image_px, args.classes = "test_resnet", 32, 40, 4
        args.per_class, args.batch_size, args.workers = 8, 8, 0
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = make_demo(Path(tmp) / "demo", classes=args.classes, per_class=args.per_class, size=args.image_px,
                         image_format="jpg", shard_size=max(1, args.classes * args.per_class // 16))  # fmt: skip
        cfg = TrainConfig(data=str(data), model=args.model, img_size=args.img_size, epochs=args.epochs,
                          batch_size=args.batch_size, workers=args.workers, device=device,
                          out=str(Path(tmp) / "run"), keep_checkpoints=1)  # fmt: skip
        common = {"model": args.model, "img_size": args.img_size, "batch": args.batch_size, "device": device}
        rows.append(common | bench_loader(cfg, args.epochs))
        rows.append(common | {"workers": args.workers} | bench_train(cfg))
    print_table(rows, COLUMNS)
    if args.json:
        write_json(args.json, rows)
    if args.smoke:
        print("smoke run (tiny model): no result file written")
    else:
        print(f"wrote {write_results(f'pretrain_{device_slug()}', rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
