"""synth-glide-check: compare synthdata's GLIDE with reference outputs of the official implementation.

Runs every case found in DIR (tokenizer cases, schedules, manifests, forwards, guided sampling, Real
Guidance, upsampler DDIM), building models only from the options stored there; prints a table of relative
errors and exits 1 if any check exceeds its limit (forwards 1e-4, sampling loops 1e-3), 2 if DIR is unusable.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from synthdata.tools._cli import Command
from synthdata.tools._common import run_cli

PROG = "synth-glide-check"


def build_command() -> Command:
    cmd = Command(PROG, __doc__.splitlines()[0])
    cmd.parser.add_argument("dir", type=Path, help="reference directory (cases.json, cases.safetensors, ...)")
    cmd.add("case", action="append", dest="cases", default=None, metavar="NAME",
            help="run only this case (repeatable): a cases.json name, 'tokenizer', 'schedules' or a manifest stem")
    cmd.add("json", action="store_true", default=False, help="print the results as JSON instead of a table")
    return cmd


def build_parser() -> argparse.ArgumentParser:
    return build_command().parser


def main(argv: list[str] | None = None) -> int:
    args = build_command().parse(argv)

    def body() -> int:
        from synthdata.diffusion.reference import check_reference, format_table

        start = time.perf_counter()
        results = check_reference(args.dir, cases=args.cases)
        failed = [r for r in results if not r.ok]
        if args.json:
            rows = [
                {"case": r.case, "quantity": r.quantity, "error": r.error, "limit": r.limit, "ok": r.ok, "note": r.note}
                for r in results
            ]
            print(json.dumps({"dir": str(args.dir), "results": rows, "failed": len(failed)}, indent=1))
        else:
            print(format_table(results))
            took = time.perf_counter() - start
            verdict = "all within limits" if not failed else f"{len(failed)} FAILED"
            print(f"\n{len(results)} checks, {verdict} ({took:.1f} s)")
        if not results:
            print(f"{PROG}: error: no checks found in {args.dir}", file=sys.stderr)
            return 1
        return 1 if failed else 0

    from synthdata.diffusion.reference import ReferenceError

    return run_cli(PROG, body, (ReferenceError,))


if __name__ == "__main__":
    sys.exit(main())
