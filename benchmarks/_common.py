"""Helpers shared by the benchmark scripts: environment description, git commit and result files."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def environment() -> dict[str, Any]:
    """Device, versions and date, recorded with every result."""
    info: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["device"] = (
            torch.cuda.get_device_name(0)
            if torch.cuda.is_available()
            else f"cpu ({platform.processor() or platform.machine()})"
        )
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["device"] = f"cpu ({platform.machine()})"
    return info


def git_commit(root: str | os.PathLike[str], short: int | None = None) -> str | None:
    """``HEAD`` of the checkout at ``root`` (its first ``short`` digits if given), with ``-dirty`` when tracked
    files differ from it; None without git or outside a checkout."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    head = git("rev-parse", *([f"--short={short}"] if short else []), "HEAD")
    if head is None:
        return None
    return head + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def slug(text: str) -> str:
    """``text`` as part of a file name: lower case, each run of other characters one ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def device_slug() -> str:
    """This machine's device as part of a result name (``nvidia_h200``, ``cpu_x86_64``)."""
    return slug(environment()["device"])


def write_results(name: str, rows: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> Path:
    """Write ``{"environment": ..., "rows": ...}`` to ``benchmarks/results/<name>.json`` atomically."""
    return write_json(RESULTS_DIR / f"{name}.json", rows, extra)


def write_json(path: str | os.PathLike[str], rows: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> Path:
    """Write ``{"environment": ..., "rows": ...}`` to ``path`` atomically (the ``--json`` of every script,
    which ``gpu_suite.py`` reads; written in ``--smoke`` too)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps({"environment": environment(), **(extra or {}), "rows": rows}, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Print rows as an aligned text table."""
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return "" if value is None else str(value)
