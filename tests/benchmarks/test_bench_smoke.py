"""Every benchmark script runs end to end at --smoke size, so CI keeps them working."""

import json
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
    "bench_pretrain.py",
    "bench_class_mix.py",
    "bench_cli_latency.py",
]
JSON_SCRIPTS = {"bench_kernels.py", "bench_sampling.py", "bench_filter.py", "bench_pretrain.py"}
"""Scripts with ``--json PATH`` (what gpu_suite.py reads their rows from)."""


@pytest.mark.parametrize("script", SMOKE_SCRIPTS)
def test_benchmark_smoke(script, tmp_path):
    out = tmp_path / "rows.json"
    extra = ["--json", str(out)] if script in JSON_SCRIPTS else []
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke", *extra], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip(), "a benchmark prints a table"
    if extra:
        data = json.loads(out.read_text())
        assert data["rows"] and "device" in data["environment"]
