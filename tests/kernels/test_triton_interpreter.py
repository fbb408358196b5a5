"""Runs the triton kernels' parity tests (``interp/interp_*.py``) in triton's CPU interpreter.

Triton 3.9 fixes interpreted-vs-compiled when ``triton.language`` is imported (its standard library
functions are decorated then), so ``TRITON_INTERPRET=1`` must be set before the first ``import triton``
and cannot be switched inside one process. The modules therefore run in a ``pytest`` subprocess
with the variable set (one subprocess for all of them: the torch/triton import dominates); nothing leaks into this process or other test areas (a conftest setting it would
also turn the real GPU kernels of ``-m gpu`` runs into interpreted ones).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
MODULES = sorted((HERE / "interp").glob("interp_*.py"))


def test_triton_kernels_in_interpreter():
    pytest.importorskip("triton")
    assert len(MODULES) == 4, MODULES
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHDATA_") or not k.endswith("_BACKEND")}
    env["TRITON_INTERPRET"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "python_files=interp_*.py", *map(str, MODULES)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    tail = (proc.stdout[-6000:] + "\n" + proc.stderr[-3000:]).strip()
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{tail}"
    assert " passed" in proc.stdout and " skipped" not in proc.stdout.splitlines()[-1], tail
