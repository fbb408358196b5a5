"""Make the GPU check one device call: wheels the GPU image lacks, the official code, the exact call.

    python3 benchmarks/gpu_prepare.py            # download the wheels into .whl/, copy the anchors into
                                                 # .anchors/, check, print the device call
    python3 benchmarks/gpu_prepare.py --check    # dry run: check what is there; download and copy nothing

(``uv run python benchmarks/gpu_prepare.py`` works too; pip is then taken from a ``python3`` on PATH that
has it, since the project's venv has none.) Both folders are git-ignored (``.git/info/exclude``), so they
travel only as ``carry``. The check fails (exit 1) when a wheel is missing, doubled or at another version
than ``uv.lock``'s, when a wheel needs a package that neither the GPU image nor ``.whl/`` has, when the
official code or the suite is missing, when a folder is not ignored, when the working tree and the carried
folders exceed the 64 MiB a call may carry, or when the command exceeds 2000 characters.
See docs/kernels.md, "Running the GPU check".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import git_commit

ROOT = Path(__file__).resolve().parents[1]
WHEEL_DIR, ANCHOR_DIR = ".whl", ".anchors"
CARRY = [WHEEL_DIR, ANCHOR_DIR]
WHEELS = ("open_clip_torch", "webdataset", "braceexpand", "ftfy", "wcwidth")
"""What the members import that the GPU image lacks (KINDS.md's package list), with their own needs."""
GPU_IMAGE = frozenset({
    "torch", "torchvision", "triton", "numpy", "pillow", "regex", "tqdm", "huggingface-hub", "safetensors", "timm",
    "pyyaml", "transformers", "tokenizers", "sentencepiece", "matplotlib", "rich", "attrs", "filelock",
    "requests", "fsspec", "packaging", "typing-extensions", "pytest", "hypothesis", "psutil",
})  # fmt: skip
"""Packages of the GPU image (KINDS.md, "Python packages already there") that the wheels above need."""
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")  # fmt: skip
LIMIT_BYTES = 64 * 2**20
COMMAND_LIMIT = 2000
BUDGET_S = 420
MARGIN_S = 60
"""The device call's timeout_s is the suite's budget plus this: the wheel install, the probe, the report."""


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock: Path, names: Iterable[str] = WHEELS) -> dict[str, str]:
    """``{name: version}`` from ``uv.lock`` for ``names`` (the wheels match what the tests ran with)."""
    packages = tomllib.loads(lock.read_text())["package"]
    by_name = {normalise(p["name"]): p["version"] for p in packages}
    missing = [n for n in names if normalise(n) not in by_name]
    if missing:
        raise SystemExit(f"gpu_prepare: error: {', '.join(missing)} not in {lock}")
    return {n: by_name[normalise(n)] for n in names}


def download_command(pip: list[str], versions: dict[str, str], dest: Path) -> list[str]:
    """The device README's ``pip download`` for Python 3.12 on x86-64 manylinux, no dependencies."""
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    return [*pip, "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12", "--implementation",
            "cp", *platforms, "-d", str(dest), *(f"{n}=={v}" for n, v in versions.items())]  # fmt: skip


def find_pip() -> list[str]:
    """``[python, -m, pip]`` for the first Python with pip: this one, then each ``python3`` on PATH."""
    candidates = [sys.executable, *(str(Path(d) / "python3") for d in os.environ.get("PATH", "").split(os.pathsep))]
    for python in dict.fromkeys(candidates):
        if Path(python).is_file() and subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode == 0:
            return [python, "-m", "pip"]
    raise SystemExit("gpu_prepare: error: no Python with pip found (pass --pip 'python3 -m pip')")


# ------------------------------------------------------------------------------------------ wheels
def wheel_dist(path: Path) -> tuple[str, str]:
    """(normalised name, version) from a wheel's file name."""
    name, version = path.name.split("-")[:2]
    return normalise(name), version


def wheel_requires(path: Path) -> list[str]:
    """The normalised names of a wheel's ``Requires-Dist`` (extras left out)."""
    with zipfile.ZipFile(path) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode()
    needs = []
    for line in text.splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line.split(":", 1)[1].strip())
            if match:
                needs.append(normalise(match.group(0)))
    return needs


def wheel_problems(wheel_dir: Path, versions: dict[str, str]) -> list[str]:
    """Missing, doubled, other-version or unsatisfied wheels in ``wheel_dir``."""
    wheels = sorted(wheel_dir.glob("*.whl")) if wheel_dir.is_dir() else []
    found: dict[str, list[str]] = {}
    for w in wheels:
        name, version = wheel_dist(w)
        found.setdefault(name, []).append(version)
    problems = []
    for name, want in versions.items():
        have = found.get(normalise(name), [])
        if not have:
            problems.append(f"{wheel_dir.name}/ has no wheel of {name}=={want}")
        elif len(have) > 1:
            problems.append(f"{wheel_dir.name}/ has {len(have)} versions of {name} ({', '.join(have)}); keep one")
        elif have[0] != want:
            problems.append(f"{wheel_dir.name}/ has {name} {have[0]}, uv.lock has {want}")
    available = GPU_IMAGE | set(found)
    for w in wheels:
        for need in wheel_requires(w):
            if need not in available:
                problems.append(f"{w.name} needs {need}, which neither the GPU image nor {wheel_dir.name}/ has")
    return problems


# ------------------------------------------------------------------------------------------ the checkout
def git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def ensure_excluded(root: Path, names: Iterable[str] = CARRY) -> list[str]:
    """Add ``/<name>/`` to ``.git/info/exclude`` for each name git does not ignore yet; the lines added."""
    exclude = root / git(root, "rev-parse", "--git-path", "info/exclude").stdout.strip()
    exclude.parent.mkdir(parents=True, exist_ok=True)
    text = exclude.read_text() if exclude.exists() else ""
    added = [f"/{n}/" for n in names if git(root, "check-ignore", "-q", f"{n}/").returncode != 0]
    if added:
        exclude.write_text(text + ("" if not text or text.endswith("\n") else "\n") + "\n".join(added) + "\n")
    return added


def travelling_bytes(root: Path, carry: Iterable[str] = CARRY) -> tuple[int, int]:
    """Bytes of the working tree that travels (tracked and untracked-not-ignored files) and of ``carry``."""
    listed = git(root, "ls-files", "-z", "-co", "--exclude-standard").stdout.split("\0")
    tree = sum((root / f).stat().st_size for f in listed if f and (root / f).is_file())
    carried = sum(p.stat().st_size for c in carry for p in (root / c).rglob("*") if p.is_file())
    return tree, carried


def device_command(commit: str, budget_s: int = BUDGET_S) -> str:
    """The one device command: install the carried wheels into /tmp/site (device README), run the suite."""
    install = ("python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "
               f"{WHEEL_DIR}/*.whl && export PYTHONPATH=/tmp/site || exit;")  # fmt: skip
    suite = (f"PYTHONUNBUFFERED=1 python3 benchmarks/gpu_suite.py --out $OUT --anchors {ANCHOR_DIR} "
             f"--budget {budget_s} --commit {commit}")  # fmt: skip
    return f"{install} {suite}"


def check(root: Path, command: str, limit_bytes: int = LIMIT_BYTES) -> list[str]:
    """Everything the device call needs, without downloading: the problems found (empty: ready)."""
    problems = wheel_problems(root / WHEEL_DIR, locked_versions(root / "uv.lock"))
    for need in ("bench_official_glide.py", "glide-text2im/glide_text2im/model_creation.py"):
        if not (root / ANCHOR_DIR / need).is_file():
            problems.append(f"{ANCHOR_DIR}/{need} is missing (the official code; run without --check to copy it)")
    if not (root / "benchmarks" / "gpu_suite.py").is_file():
        problems.append("benchmarks/gpu_suite.py is missing")
    for name in CARRY:
        if git(root, "check-ignore", "-q", f"{name}/").returncode != 0:
            problems.append(f"{name}/ is not ignored by git: it would travel twice (run without --check)")
    tree, carried = travelling_bytes(root)
    if tree + carried > limit_bytes:
        problems.append(f"{(tree + carried) / 2**20:.1f} MiB would travel (tree {tree / 2**20:.1f} + carried "
                        f"{carried / 2**20:.1f}); the limit is {limit_bytes / 2**20:.0f} MiB")  # fmt: skip
    if len(command) > COMMAND_LIMIT:
        problems.append(f"the device command has {len(command)} characters; the limit is {COMMAND_LIMIT}")
    if len(CARRY) > 8 or any(len(c) > 200 for c in CARRY):
        problems.append("carry: at most 8 paths of at most 200 characters")
    return problems


def prepare(root: Path, anchors_src: Path, pip: list[str] | None) -> None:
    """Ignore both folders, download the wheels that are not there yet, copy the official code afresh."""
    for line in ensure_excluded(root):
        print(f"added {line} to .git/info/exclude")
    versions = locked_versions(root / "uv.lock")
    wheel_dir = root / WHEEL_DIR
    have = {wheel_dist(w) for w in wheel_dir.glob("*.whl")} if wheel_dir.is_dir() else set()
    todo = {n: v for n, v in versions.items() if (normalise(n), v) not in have}
    if todo:
        cmd = download_command(pip or find_pip(), todo, wheel_dir)
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    if not (anchors_src / "bench_official_glide.py").is_file():
        raise SystemExit(f"gpu_prepare: error: no bench_official_glide.py in {anchors_src} (pass --anchors-src)")
    dest = root / ANCHOR_DIR
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(anchors_src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    print(f"copied {anchors_src} to {dest}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", "--dry-run", action="store_true", help="check only: download and copy nothing")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: this one)")
    parser.add_argument("--anchors-src", type=Path, default=None, help="default: <root>/../shared/anchors")
    parser.add_argument("--budget", type=int, default=BUDGET_S, help=f"the suite's budget in s ({BUDGET_S})")
    parser.add_argument("--pip", default=None, help="pip to download with (default: found)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if not args.check:
        prepare(root, args.anchors_src or root.parent / "shared" / "anchors", args.pip.split() if args.pip else None)
    command = device_command(git_commit(root, short=12) or "unknown", args.budget)  # the tree that travels
    problems = check(root, command)
    tree, carried = travelling_bytes(root)
    for w in sorted((root / WHEEL_DIR).glob("*.whl")):
        print(f"  {WHEEL_DIR}/{w.name}  {w.stat().st_size / 2**20:.2f} MiB")
    print(f"travels: tree {tree / 2**20:.1f} MiB + carried {carried / 2**20:.1f} MiB "
          f"(limit {LIMIT_BYTES / 2**20:.0f} MiB); command {len(command)} characters")  # fmt: skip
    for p in problems:
        print(f"problem: {p}")
    if problems:
        return 1
    timeout = args.budget + MARGIN_S
    print("ready; the device call (run's arguments):")
    print(json.dumps({"command": command, "carry": CARRY, "timeout_s": timeout}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
