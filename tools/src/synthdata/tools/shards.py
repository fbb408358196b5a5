"""synth-shards: verify, summarise, view and make synthdata shard directories."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from synthdata.shards import (
    ShardError,
    contact_sheet,
    dataset_stats,
    group_by_class,
    iter_samples,
    make_demo,
    read_dataset_json,
    verify_dataset,
)
from synthdata.tools._common import run_cli

PROG = "synth-shards"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "verify", help="check every shard, sample and the dataset.json; non-zero exit on problems"
    )
    p.add_argument("dir", type=Path)
    p.add_argument("--no-decode", action="store_true", help="skip decoding images (checksums still checked)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("stats", help="per-class counts, bytes and image sizes")
    p.add_argument("dir", type=Path)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("show", help="write a contact sheet: a labelled row per class")
    p.add_argument("dir", type=Path)
    p.add_argument("--out", type=Path, required=True, help="output PNG file")
    p.add_argument("--per-class", type=int, default=8, help="thumbnails per class (default 8)")
    p.add_argument("--thumb", type=int, default=64, help="thumbnail size in pixels (default 64)")
    p.add_argument("--max-classes", type=int, default=100, help="at most this many rows (default 100)")

    p = sub.add_parser(
        "make-demo", help="write a small procedurally drawn dataset (a colour+pattern per class)"
    )
    p.add_argument("dir", type=Path)
    p.add_argument("--classes", type=int, required=True)
    p.add_argument("--per-class", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    p.add_argument("--format", default="png", choices=["png", "jpg", "webp"])
    p.add_argument("--shard-size", type=int, default=16, help="samples per shard (default 16)")
    p.add_argument("--imagefolder", action="store_true", help="write DIR/NNN_class/*.png instead of shards")
    return parser


def _verify(args: argparse.Namespace) -> int:
    report = verify_dataset(args.dir, decode_images=not args.no_decode)
    if args.json:
        print(
            json.dumps(
                {
                    "directory": str(report.directory),
                    "ok": report.ok,
                    "shards": report.shards,
                    "samples": report.samples,
                    "problems": [vars_(p) for p in report.problems],
                    "warnings": [vars_(p) for p in report.warnings],
                },
                indent=1,
            )
        )
    else:
        for w in report.warnings:
            print(f"warning: {w}")
        for p in report.problems:
            print(f"problem: {p}")
        status = "OK" if report.ok else f"FAILED ({len(report.problems)} problems)"
        print(f"{args.dir}: {report.shards} shards, {report.samples} samples: {status}")
    return 0 if report.ok else 1


def vars_(p: object) -> dict:
    return {"where": p.where, "kind": p.kind, "detail": p.detail}  # type: ignore[attr-defined]


def _stats(args: argparse.Namespace) -> int:
    stats = dataset_stats(args.dir)
    if args.json:
        print(json.dumps(stats.to_json(), indent=1))
        return 0
    print(f"{args.dir}: {stats.shards} shards, {stats.samples} samples, {stats.bytes / 1e6:.2f} MB")
    print(f"image sizes: {stats.image_sizes}  formats: {stats.image_formats}")
    print(f"{'class':>5}  {'count':>7}  name")
    for i, n in sorted(stats.per_class.items()):
        print(f"{i:>5}  {n:>7}  {stats.classes[i] if i < len(stats.classes) else '?'}")
    if stats.skipped_shards:
        print(f"skipped corrupt shards: {', '.join(stats.skipped_shards)}")
    return 0


def _show(args: argparse.Namespace) -> int:
    classes = read_dataset_json(args.dir).classes
    samples = ((s.cls, s.image) for s in iter_samples(args.dir, on_error="skip"))
    rows = group_by_class(samples, classes, args.per_class)[: args.max_classes]
    if not rows:
        raise ShardError(f"{args.dir} holds no readable samples to show")
    sheet = contact_sheet(rows, thumb=args.thumb, per_row=args.per_class)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out} ({len(rows)} classes)")
    return 0


def _make_demo(args: argparse.Namespace) -> int:
    make_demo(
        args.dir,
        classes=args.classes,
        per_class=args.per_class,
        seed=args.seed,
        size=args.size,
        image_format=args.format,
        shard_size=args.shard_size,
        imagefolder=args.imagefolder,
    )
    kind = "image folders" if args.imagefolder else "shards"
    print(
        f"wrote {args.classes * args.per_class} demo images ({args.classes} classes) as {kind} to {args.dir}"
    )
    return 0


COMMANDS = {"verify": _verify, "stats": _stats, "show": _show, "make-demo": _make_demo}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(PROG, lambda: COMMANDS[args.command](args), (ShardError, ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
