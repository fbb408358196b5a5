"""synth-prompts: class names (a built-in dataset or a file) to a prompts JSONL file.

Methods: ``le`` (Language Enhancement: a keyword-to-text T5 writes sentences around each class name, the
paper's recipe) and ``template`` (the dataset's CLIP templates filled with each class name).
Each output line is {"id", "class_index", "class_name", "prompt", "source"}; a sidecar
FILE.jsonl.config.json records the settings and per-class counts. An interrupted ``le`` run resumes
from its journal (.FILE.jsonl.le-journal.jsonl) when the same command is run again. See docs/prompts.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from synthdata.prompts import (
    GENERIC_PREFIX,
    GENERIC_TEMPLATES,
    PromptsError,
    get_dataset,
    list_datasets,
    load_class_list,
    template_prompts,
    write_prompts,
)
from synthdata.tools._common import run_cli, setup_logging

PROG = "synth-prompts"
SUMMARY_ROWS = 40


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("classes (exactly one)")
    src.add_argument("--dataset", metavar="NAME", help=f"a built-in dataset: {', '.join(list_datasets())}")
    src.add_argument("--classes", metavar="FILE", type=Path, help="a class list: .txt (one a line), .json or .csv")
    src.add_argument("--list-datasets", action="store_true", help="print the built-in datasets and exit")

    out = p.add_argument_group("output")
    out.add_argument("--method", choices=["le", "template"], default="le", help="le (default) or template")
    out.add_argument("--per-class", type=int, default=200, metavar="N", help="prompts per class (default 200)")
    out.add_argument("--out", type=Path, metavar="FILE.jsonl", help="the prompts file to write")
    out.add_argument(
        "--prefix",
        metavar="TEXT",
        help="domain prefix (default: the dataset's, e.g. 'a centered satellite photo of'; '' for none). "
        "With --method template it replaces the templates by '<prefix> <class><suffix>'",
    )
    out.add_argument("--suffix", metavar="TEXT", help="domain suffix (default: the dataset's, e.g. ', a type of bird')")
    out.add_argument("--quiet", action="store_true", help="no progress bar or summary table")
    out.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    le = p.add_argument_group("Language Enhancement (--method le)")
    le.add_argument("--model", metavar="ID", help="seq2seq model id or local directory (default: the paper's "
                    "mrm8488/t5-base-finetuned-common_gen)")
    le.add_argument("--smoke", action="store_true", help="tiny random T5 with a locally built tokenizer (no download)")
    le.add_argument("--seed", type=int, default=0, help="sampling seed (default 0); same seed, same file")
    le.add_argument("--on-missing-class", choices=["repair", "drop"], default="repair",
                    help="a sentence without the class name: repair (default: prefix it with the class name) or drop")
    le.add_argument("--no-resume", action="store_true",
                    help="start over instead of reusing the finished blocks of an interrupted run")
    le.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")
    le.add_argument("--batch-size", type=int, default=256, help="sequences per generate() call (default 256)")
    le.add_argument("--num-return-sequences", type=int, default=16, help="samples per input row (default 16)")
    le.add_argument("--max-rounds", type=int, default=10, help="sampling rounds before reporting a shortfall (default 10)")
    le.add_argument("--top-k", type=int, default=50)
    le.add_argument("--top-p", type=float, default=1.0)
    le.add_argument("--temperature", type=float, default=1.0)
    le.add_argument("--max-new-tokens", type=int, default=None, help="default 32 (12 with --smoke)")
    return p


def _print_datasets() -> None:
    for name in list_datasets():
        spec = get_dataset(name)
        print(f"{name:16s} {spec.num_classes:5d} classes {len(spec.templates):3d} templates  prefix={spec.prefix!r}"
              + (f" suffix={spec.suffix!r}" if spec.suffix else ""))


def _summary(rows: list[dict], method: str, quiet: bool) -> None:
    if quiet:
        return
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(stderr=True)
    table = Table(title=f"synth-prompts: {method}, unique prompts per class", box=box.SIMPLE_HEAD, pad_edge=False)
    cols = ["#", "class", "unique", "wanted"]
    keys = []
    if method == "le":
        # the per-class counts of generate(); see docs/prompts.md
        keys = ["generated", "duplicates", "missing_class", "repaired", "dropped", "shortfall"]
        cols += ["sampled", "dup", "no name", "rep", "drop", "short"]
    for c in cols:
        table.add_column(c, justify="left" if c == "class" else "right", overflow="fold")
    short = [r for r in rows if r.get("shortfall")]
    head = rows[: SUMMARY_ROWS // 2]
    shown = rows if len(rows) <= SUMMARY_ROWS else head + [r for r in short if r not in head]
    for r in shown:
        vals = [str(r["class_index"]), escape(r["class_name"]), str(r["unique"]), str(r["wanted"])]
        table.add_row(*vals, *(str(r[k]) for k in keys))
    console.print(table)
    if len(shown) < len(rows):
        console.print(f"({len(rows) - len(shown)} more classes not shown; all counts are in the .config.json sidecar)")
    total = sum(r["unique"] for r in rows)
    console.print(f"{total} prompts over {len(rows)} classes")
    if short:
        names = ", ".join(f"{r['class_index']}:{escape(r['class_name'])} (-{r['shortfall']})" for r in short[:20])
        console.print(f"[yellow]warning:[/] {len(short)} classes are short of {rows[0]['wanted']} unique prompts: {names}"
                      + (" ..." if len(short) > 20 else ""))


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.list_datasets:
        _print_datasets()
        return 0
    if (args.dataset is None) == (args.classes is None):
        parser.error("give exactly one of --dataset NAME or --classes FILE")
    if args.out is None:
        parser.error("--out FILE.jsonl is required")
    if args.per_class < 1:
        parser.error("--per-class must be at least 1")
    if args.smoke and args.model:
        parser.error("--smoke uses its own tiny model; drop --model")
    setup_logging(args.verbose)

    if args.dataset is not None:
        spec = get_dataset(args.dataset)
        classnames, templates, d_prefix, d_suffix = spec.classnames, spec.templates, spec.prefix, spec.suffix
        origin = {"dataset": spec.name}
    else:
        classnames = load_class_list(args.classes)
        templates, d_prefix, d_suffix = GENERIC_TEMPLATES, GENERIC_PREFIX, ""
        origin = {"classes": str(args.classes)}
    prefix = d_prefix if args.prefix is None else args.prefix
    suffix = d_suffix if args.suffix is None else args.suffix

    meta: dict = {"tool": PROG, "method": args.method, **origin, "num_classes": len(classnames),
                  "per_class": args.per_class, "prefix": prefix, "suffix": suffix}
    if args.method == "template":
        explicit = args.prefix is not None
        records = template_prompts(classnames, templates, args.per_class,
                                   prefix=prefix if explicit else None, suffix=suffix if explicit else "")
        rows = []
        for ci, name in enumerate(classnames):
            uniq = len({r.prompt for r in records if r.class_index == ci})
            rows.append({"class_index": ci, "class_name": name, "unique": uniq, "wanted": args.per_class})
        meta["templates"] = list(templates) if not explicit else [f"{prefix} {{}}{suffix}"]
    else:
        records, rows = _run_le(args, classnames, prefix, suffix, meta)

    n = write_prompts(args.out, records)
    meta["lines"] = n
    meta["classes_summary"] = rows
    side = args.out.with_name(args.out.name + ".config.json")
    tmp = side.with_name("." + side.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(side)
    _journal_path(args.out).unlink(missing_ok=True)  # the output is complete: nothing left to resume
    _summary(rows, args.method, args.quiet)
    if not args.quiet:
        print(f"wrote {n} prompts to {args.out}", file=sys.stderr)
    return 0


def _journal_path(out: Path) -> Path:
    """Finished Language Enhancement blocks of an unfinished run writing ``out``."""
    return out.with_name(f".{out.name}.le-journal.jsonl")


def _run_le(args, classnames, prefix, suffix, meta):
    import torch
    import transformers
    from tqdm import tqdm

    from synthdata.prompts.le import (
        DEFAULT_BLOCK_CLASSES,
        DEFAULT_MODEL,
        LanguageEnhancer,
        LEConfig,
        le_prompts,
    )

    max_new = args.max_new_tokens if args.max_new_tokens is not None else (12 if args.smoke else 32)
    cfg = LEConfig(
        per_class=args.per_class, top_k=args.top_k, top_p=args.top_p, temperature=args.temperature,
        max_new_tokens=max_new, num_return_sequences=args.num_return_sequences, batch_size=args.batch_size,
        max_rounds=args.max_rounds, on_missing_class=args.on_missing_class, seed=args.seed,
    )
    if args.smoke:
        enhancer = LanguageEnhancer.smoke(classnames, device="cpu" if args.device == "auto" else args.device)
    else:
        enhancer = LanguageEnhancer.from_pretrained(args.model or DEFAULT_MODEL, device=args.device)
    bar = tqdm(total=len(classnames) * args.per_class, unit="sent", desc="language enhancement",
               disable=args.quiet, file=sys.stderr, dynamic_ncols=True)
    journal = _journal_path(args.out)
    if args.no_resume:
        journal.unlink(missing_ok=True)
    with bar:
        result = enhancer.generate_resumable(classnames, cfg, journal=journal, progress=bar.update)
    records = le_prompts(result, classnames, prefix, suffix)
    rows = []
    for st in result.stats:
        rows.append({"class_index": st.class_index, "class_name": st.class_name, "unique": st.unique,
                     "wanted": st.wanted, "generated": st.generated, "duplicates": st.duplicates,
                     "empty": st.empty, "missing_class": st.missing_class, "repaired": st.repaired,
                     "dropped": st.dropped, "rounds": st.rounds, "saturated": st.saturated,
                     "shortfall": st.shortfall})
    meta.update({
        "model": enhancer.model_id, "smoke": bool(args.smoke), "device": str(enhancer.device),
        "le_config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        "block_classes": DEFAULT_BLOCK_CLASSES, "generate_calls": result.calls, "shortfall_classes": len(result.shortfalls),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    })
    return records, rows


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_cli(PROG, lambda: _run(args, parser), (PromptsError, ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
