"""How fast the commands answer ``--help`` and an input error: they must not import torch first.

    uv run python benchmarks/bench_cli_latency.py [--repeats 5] [--smoke]

Each command is started as a fresh process (the entry point in the environment's ``bin``), ``--repeats`` times;
the table shows the median wall time. The target is under 1 s (issue: ``synth-filter --help``,
``synth-tune --in missing``). Writes ``benchmarks/results/cli_latency.json`` (``--smoke``: one repeat, no file).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_results

CASES = [
    ("synth-filter", ["--help"], 0),
    ("synth-tune", ["--help"], 0),
    ("synth-tune", ["--in", "/no/such/shards", "--eval", "/no/such/eval", "--dataset", "cifar10", "--out", "/tmp/x"], 2),
    ("synth-filter", ["--in", "/no/such/shards", "--out", "/tmp/x"], 2),
    ("synth-generate", ["--help"], 0),
    ("synth-prompts", ["--help"], 0),
    ("synth-pretrain", ["--help"], 0),
    ("synth-pipeline", ["--help"], 0),
    ("synth-pipeline", ["--dataset", "cifar10", "--eval", "/no/such/eval", "--out", "/tmp/x"], 2),
    ("synth-shards", ["verify", "ftp://host/x"], 2),
]


def time_command(command: str, args: list[str], expected: int, repeats: int) -> dict:
    exe = str(Path(sys.executable).parent / command)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        done = subprocess.run([exe, *args], capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if done.returncode != expected:
            raise SystemExit(f"{command} {args}: exit {done.returncode}, expected {expected}: {done.stderr[-500:]}")
    return {"command": f"{command} {' '.join(args)}"[:70], "exit": expected, "median_s": statistics.median(times),
            "max_s": max(times), "under_1s": statistics.median(times) < 1.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="one repeat, no result file")
    args = parser.parse_args(argv)
    repeats = 1 if args.smoke else args.repeats
    rows = [time_command(c, a, e, repeats) for c, a, e in CASES]
    print_table(rows, ["command", "exit", "median_s", "max_s", "under_1s"])
    if not args.smoke:
        print(f"wrote {write_results('cli_latency', rows, {'repeats': repeats})}")
    return 0 if all(r["under_1s"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
