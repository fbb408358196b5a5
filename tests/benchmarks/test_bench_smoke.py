"""Every benchmark script runs end to end at --smoke size, so CI keeps them working."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
SMOKE_SCRIPTS = [
    "bench_shards.py",
    "bench_prompts.py",
    "bench_glide_forward.py",
    "bench_kernels.py",
    "bench_sampling.py",
    "bench_filter.py",
]


@pytest.mark.parametrize("script", SMOKE_SCRIPTS)
def test_benchmark_smoke(script):
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip(), "a benchmark prints a table"
