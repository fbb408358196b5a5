"""Open a report in headless Chromium (Debian ``chromium``) and read back what rendered."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def dump_dom(html_path: Path, tmp_path: Path) -> str:
    """The DOM of ``html_path`` after its load event, from headless Chromium."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--dump-dom", html_path.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def rendered_counts(dom: str) -> tuple[int, int]:
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    total = re.search(r'data-images="(\d+)"', body.group(1))
    ok = re.search(r'data-images-rendered="(\d+)"', body.group(1))
    assert total and ok, "the report's load script did not run"
    return int(total.group(1)), int(ok.group(1))
