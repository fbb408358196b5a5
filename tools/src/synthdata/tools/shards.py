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

from synthdata.shards.errors import ShardError
from synthdata.tools._cli import Command
from synthdata.tools._cli.paths import local, location
from synthdata.tools._common import run_cli

PROG = "synth-shards"


def _verify_command(cmd: Command) -> None:
    cmd.parser.add_argument("dir", type=location("verify"), help="shard directory or directory URL")
    cmd.add("decode", action="store_false", default=True, help="skip decoding images (checksums still checked)")
    cmd.add("json", action="store_true", default=False, help="print the report as JSON")


def _stats_command(cmd: Command) -> None:
    cmd.parser.add_argument("dir", type=location("stats"), help="shard directory or directory URL")
    cmd.add("json", action="store_true", default=False)


def _show_command(cmd: Command) -> None:
    cmd.parser.add_argument("dir", type=location("show"), help="shard directory or directory URL")
    cmd.add("out", type=location("--out", write=True), required=True, metavar="FILE.png",
            help="output PNG file (a path, s3:// or gs://)")
    cmd.add("thumbs_per_class", type=int, default=8, help="thumbnails per class (default 8)")
    cmd.add("thumb", type=int, default=64, help="thumbnail size in pixels (default 64)")
    cmd.add("max_classes", type=int, default=100, help="at most this many rows (default 100)")
    cmd.deprecate("--per-class", "thumbs_per_class")


def _make_demo_command(cmd: Command) -> None:
    cmd.parser.add_argument("dir", type=local("make-demo", what="a local directory"), help="output directory")
    cmd.add("num_classes", type=int, required=True)
    cmd.add("images_per_class", type=int, required=True)
    cmd.add("seed", type=int, default=0, help="seed (default 0)")
    cmd.add("size", type=int, default=64, help="image side in pixels (default 64)")
    cmd.add("image_format", default="png", choices=["png", "jpg", "webp"])
    cmd.add("shard_size", type=int, default=16, help="samples per shard (default 16)")
    cmd.add("as_imagefolder", action="store_true", default=False, help="write DIR/NNN_class/*.png instead of shards")
    cmd.deprecate("--classes", "num_classes")
    cmd.deprecate("--imagefolder", "as_imagefolder")
    cmd.deprecate("--per-class", "images_per_class")


def _index_command(cmd: Command) -> None:
    cmd.parser.add_argument("dir", type=location("index", write=True),
                            help="directory or URL holding *.tar shards (local, s3://, gs://)")
    cmd.add("classes_file", type=local("--classes"), default=None,
            help="class names, one a line (or .json/.csv); default: the indices")
    cmd.add("label_field", default="", help="take labels from this field of each sample's json (default: cls)")
    cmd.add("name", default=None, help="dataset name (default: the directory's name)")


def _export_command(cmd: Command) -> None:
    cmd.parser.add_argument("dir", type=location("export"), help="shard directory or directory URL")
    cmd.add("imagefolder_out", type=local("--imagefolder", what="a local folder"), required=True, metavar="OUT",
            help="output folder (local; an earlier export resumes)")


SUBCOMMANDS = {
    "verify": ("check every shard, sample and the dataset.json; non-zero exit on problems", _verify_command),
    "stats": ("per-class counts, bytes and image sizes", _stats_command),
    "show": ("write a contact sheet: a labelled row per class", _show_command),
    "make-demo": ("write a small procedurally drawn dataset (a colour+pattern per class)", _make_demo_command),
    "index": ("adopt WebDataset shards written elsewhere: sidecars, dataset.json and the files timm, wids and "
              "Hugging Face look for, without rewriting a tar (a rerun resumes)", _index_command),
    "export": ("write an ImageFolder (NNN_<class>/<key>.<ext>) from a shard directory", _export_command),
}


def build_command(name: str) -> Command:
    text, add = SUBCOMMANDS[name]
    cmd = Command(f"{PROG} {name}", text)
    add(cmd)
    cmd.add_run_options(recipes=False, quiet=False)
    return cmd


def build_commands() -> dict[str, Command]:
    """Every subcommand (for the reference and the vocabulary test)."""
    return {f"{PROG} {name}": build_command(name) for name in SUBCOMMANDS}


def build_parser() -> argparse.ArgumentParser:
    """A parser with every subcommand (for ``--help``)."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        cmd = build_command(name)
        sub.add_parser(name, parents=[cmd.parser], add_help=False, help=cmd.parser.description)
    return parser


def _verify(args: argparse.Namespace) -> int:
    from synthdata.shards import verify_dataset

    report = verify_dataset(args.dir, decode_images=args.decode)
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
    from synthdata.shards import dataset_stats

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
    from synthdata.shards import contact_sheet, group_by_class, iter_samples, read_dataset_json, storage

    classes = read_dataset_json(args.dir).classes
    samples = ((s.cls, s.image) for s in iter_samples(args.dir, on_error="skip"))
    rows = group_by_class(samples, classes, args.thumbs_per_class)[: args.max_classes]
    if not rows:
        raise ShardError(f"{args.dir} holds no readable samples to show")
    sheet = contact_sheet(rows, thumb=args.thumb, per_row=args.thumbs_per_class)
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


def _make_demo(args: argparse.Namespace) -> int:
    from synthdata.shards import make_demo

    make_demo(
        args.dir,
        classes=args.num_classes,
        per_class=args.images_per_class,
        seed=args.seed,
        size=args.size,
        image_format=args.image_format,
        shard_size=args.shard_size,
        imagefolder=args.as_imagefolder,
    )
    kind = "image folders" if args.as_imagefolder else "shards"
    print(
        f"wrote {args.num_classes * args.images_per_class} demo images ({args.num_classes} classes) as {kind} "
        f"to {args.dir}"
    )
    return 0


def _index(args: argparse.Namespace) -> int:
    from synthdata.prompts import load_class_list
    from synthdata.shards import storage
    from synthdata.shards.adopt import index_shards

    classes = list(load_class_list(Path(args.classes_file))) if args.classes_file else None
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

    out = Path(args.imagefolder_out)
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
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SUBCOMMANDS:
        build_parser().parse_args(argv)  # help, or the usage error naming the subcommands
    name = argv.pop(0)
    args = build_command(name).parse(argv)
    return run_cli(PROG, lambda: COMMANDS[name](args), (ShardError, ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
