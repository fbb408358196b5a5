"""synth-shards: verify, summarise, view, make, adopt and export synthdata shard directories.

DIR is a local directory or, for verify, stats, show, index and export, a directory URL (s3://, gs://;
http(s):// for reading). A location a command cannot serve is refused with one line before anything is
written.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from synthdata.shards import (
    ShardError,
    StorageError,
    contact_sheet,
    dataset_stats,
    group_by_class,
    iter_samples,
    make_demo,
    read_dataset_json,
    storage,
    verify_dataset,
)
from synthdata.tools._common import run_cli

PROG = "synth-shards"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    # Locations stay strings: Path("s3://b/d") would collapse the "//" and mangle the URL.
    p = sub.add_parser(
        "verify", help="check every shard, sample and the dataset.json; non-zero exit on problems"
    )
    p.add_argument("dir", help="shard directory or directory URL")
    p.add_argument("--no-decode", action="store_true", help="skip decoding images (checksums still checked)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("stats", help="per-class counts, bytes and image sizes")
    p.add_argument("dir", help="shard directory or directory URL")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("show", help="write a contact sheet: a labelled row per class")
    p.add_argument("dir", help="shard directory or directory URL")
    p.add_argument("--out", required=True, help="output PNG file (a path, s3:// or gs://)")
    p.add_argument("--per-class", type=int, default=8, help="thumbnails per class (default 8)")
    p.add_argument("--thumb", type=int, default=64, help="thumbnail size in pixels (default 64)")
    p.add_argument("--max-classes", type=int, default=100, help="at most this many rows (default 100)")

    p = sub.add_parser(
        "make-demo", help="write a small procedurally drawn dataset (a colour+pattern per class)"
    )
    p.add_argument("dir", help="output directory (local)")
    p.add_argument("--classes", type=int, required=True)
    p.add_argument("--per-class", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    p.add_argument("--format", default="png", choices=["png", "jpg", "webp"])
    p.add_argument("--shard-size", type=int, default=16, help="samples per shard (default 16)")
    p.add_argument("--imagefolder", action="store_true", help="write DIR/NNN_class/*.png instead of shards")

    p = sub.add_parser(
        "index",
        help="adopt WebDataset shards written elsewhere: sidecars, dataset.json and the files timm, wids "
        "and Hugging Face look for, without rewriting a tar (a rerun resumes)",
    )
    p.add_argument("dir", help="directory or URL holding *.tar shards (local, s3://, gs://)")
    p.add_argument("--classes", type=Path, help="class names, one a line (or .json/.csv); default: the indices")
    p.add_argument(
        "--label-field", default="", help="take labels from this field of each sample's json (default: cls)"
    )
    p.add_argument("--name", help="dataset name (default: the directory's name)")

    p = sub.add_parser("export", help="write an ImageFolder (NNN_<class>/<key>.<ext>) from a shard directory")
    p.add_argument("dir", help="shard directory or directory URL")
    p.add_argument("--imagefolder", required=True, help="output folder (local; an earlier export resumes)")
    return parser


def _verify(args: argparse.Namespace) -> int:
    report = verify_dataset(args.dir, decode_images=not args.no_decode)
    if args.json:
        print(
            json.dumps(
                {
                    "directory": report.directory,
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
    storage.check_location(args.dir, flag="show")
    storage.check_location(args.out, flag="--out", write=True)
    classes = read_dataset_json(args.dir).classes
    samples = ((s.cls, s.image) for s in iter_samples(args.dir, on_error="skip"))
    rows = group_by_class(samples, classes, args.per_class)[: args.max_classes]
    if not rows:
        raise ShardError(f"{args.dir} holds no readable samples to show")
    sheet = contact_sheet(rows, thumb=args.thumb, per_row=args.per_class)
    if storage.is_url(args.out):
        buf = io.BytesIO()
        sheet.save(buf, format="PNG")
        storage.write_bytes(args.out, buf.getvalue())
    else:
        out = storage.local_path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(out)
    print(f"wrote {args.out} ({len(rows)} classes)")
    return 0


def _local_only(location: str, flag: str) -> Path:
    """A local output path; a URL is refused (one line) so no folder named ``s3:`` or ``http:`` appears."""
    if storage.is_url(location):
        raise StorageError(f"{flag} {location}: this command writes a local folder; give a local path")
    return storage.local_path(location)


def _make_demo(args: argparse.Namespace) -> int:
    make_demo(
        _local_only(args.dir, "make-demo"),
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


def _class_list(path: Path) -> list[str]:
    try:
        from synthdata.prompts import load_class_list
    except ImportError:  # pragma: no cover - prompts is a dependency of the tools
        lines = path.read_text(encoding="utf-8").splitlines()
        return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return list(load_class_list(path))


def _index(args: argparse.Namespace) -> int:
    from synthdata.shards.adopt import index_shards

    storage.check_location(args.dir, flag="index", write=True)
    classes = _class_list(args.classes) if args.classes else None
    result = index_shards(
        args.dir,
        classes=classes,
        label_field=args.label_field,
        name=args.name,
        on_shard=lambda name, count: print(f"indexed {name} ({count} samples)"),
    )
    for kept in result.interop.kept:
        print(f"kept {kept}: not written by synthdata, left as it is")
    wrote = [storage.basename(p) for p in result.interop.written]
    wrote += ["dataset.json"] if result.wrote_dataset_json else []
    print(
        f"{args.dir}: {len(result.indexed)} shards indexed now, {result.shards} in all, {result.samples} samples, "
        f"{len(result.classes)} classes; wrote {', '.join(wrote) or 'nothing else'}"
    )
    if args.label_field:
        print(
            f"note: labels come from the json field {args.label_field!r} and live in the sidecars; readers of "
            "the cls member (webdataset pipelines) find none in these shards"
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    from synthdata.shards.export import export_imagefolder

    storage.check_location(args.dir, flag="export")
    out = _local_only(args.imagefolder, "--imagefolder")
    result = export_imagefolder(args.dir, out)
    print(
        f"wrote {result.written} images to {out} ({len(result.folders)} class folders; "
        f"{result.skipped} already there)"
    )
    return 0


COMMANDS = {
    "verify": _verify,
    "stats": _stats,
    "show": _show,
    "make-demo": _make_demo,
    "index": _index,
    "export": _export,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(PROG, lambda: COMMANDS[args.command](args), (ShardError, ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
