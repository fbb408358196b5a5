"""benchmarks/gpu_prepare.py on a fake checkout: the dry-run check, the device command, no network."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import gpu_prepare  # noqa: E402

VERSIONS = {"open_clip_torch": "3.3.0", "webdataset": "1.0.2", "braceexpand": "0.1.7", "ftfy": "6.3.1",
            "wcwidth": "0.9.4"}  # fmt: skip
NEEDS = {  # the real wheels' Requires-Dist (no extras)
    "open_clip_torch": ["torch>=2.0", "torchvision", "regex", "ftfy", "tqdm", "huggingface-hub", "safetensors",
                        "timm>=1.0.17"],
    "webdataset": ["braceexpand", "numpy", "pyyaml"],
    "ftfy": ["wcwidth"],
}  # fmt: skip


def make_wheel(wheel_dir: Path, name: str, version: str, needs: list[str] = ()) -> Path:
    wheel_dir.mkdir(exist_ok=True)
    path = wheel_dir / f"{name}-{version}-py3-none-any.whl"
    meta = [f"Name: {name}", f"Version: {version}", *(f"Requires-Dist: {n}" for n in needs),
            'Requires-Dist: pytest; extra == "test"']  # fmt: skip
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}-{version}.dist-info/METADATA", "\n".join(meta) + "\n")
        zf.writestr(f"{name.split('_')[0]}/__init__.py", "")
    return path


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A prepared fake checkout: lock, suite, wheels, anchors, both folders ignored."""
    root = tmp_path / "repo"
    (root / "benchmarks").mkdir(parents=True)
    (root / "benchmarks" / "gpu_suite.py").write_text("# the suite\n")
    lock = "".join(f'[[package]]\nname = "{n.replace("_", "-")}"\nversion = "{v}"\n\n' for n, v in VERSIONS.items())
    (root / "uv.lock").write_text('version = 1\n\n[[package]]\nname = "torch"\nversion = "2.11.0"\n\n' + lock)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    for name, version in VERSIONS.items():
        make_wheel(root / ".whl", name, version, NEEDS.get(name, []))
    anchors = root / ".anchors"
    (anchors / "glide-text2im" / "glide_text2im").mkdir(parents=True)
    (anchors / "bench_official_glide.py").write_text("print('official')\n")
    (anchors / "glide-text2im" / "glide_text2im" / "model_creation.py").write_text("")
    assert gpu_prepare.ensure_excluded(root) == ["/.whl/", "/.anchors/"]
    return root


def _check(root: Path, **kw) -> list[str]:
    return gpu_prepare.check(root, gpu_prepare.device_command("abc"), **kw)


def test_a_prepared_checkout_passes_and_prints_the_device_call(checkout, capsys):
    assert _check(checkout) == []
    assert gpu_prepare.main(["--check", "--root", str(checkout)]) == 0
    out = capsys.readouterr().out
    call = json.loads(out[out.index("{") :])
    assert call["carry"] == [".whl", ".anchors"]
    assert call["timeout_s"] == gpu_prepare.BUDGET_S + gpu_prepare.MARGIN_S
    cmd = call["command"]
    assert len(cmd) <= 2000
    head = cmd.split(" && ")[0]  # the device README's install, verbatim
    assert head == ("python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade "
                    "--target /tmp/site .whl/*.whl")  # fmt: skip
    assert "export PYTHONPATH=/tmp/site || exit;" in cmd
    assert "python3 benchmarks/gpu_suite.py --out $OUT --anchors .anchors --budget 420 --commit " in cmd
    commit = cmd.rsplit("--commit ", 1)[1]
    assert len(commit) == 12 and not commit.endswith("-dirty")  # .whl/ and .anchors/ change no tracked file
    assert ".whl/open_clip_torch-3.3.0-py3-none-any.whl" in out and "travels: tree" in out


def test_the_dry_run_downloads_and_copies_nothing(checkout, capsys):
    (checkout / ".whl" / "wcwidth-0.9.4-py3-none-any.whl").unlink()
    before = sorted(p.name for p in (checkout / ".whl").iterdir())
    assert gpu_prepare.main(["--check", "--root", str(checkout), "--pip", "false"]) == 1
    assert sorted(p.name for p in (checkout / ".whl").iterdir()) == before
    out = capsys.readouterr().out
    assert "problem: .whl/ has no wheel of wcwidth==0.9.4" in out and "device call" not in out


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: make_wheel(r / ".whl", "ftfy", "6.2.0", ["wcwidth"]), "2 versions of ftfy"),
        (lambda r: (r / ".whl" / "ftfy-6.3.1-py3-none-any.whl").rename(r / ".whl" / "ftfy-6.2.0-py3-none-any.whl"),
         "ftfy 6.2.0, uv.lock has 6.3.1"),
        (lambda r: make_wheel(r / ".whl", "extra_pkg", "1.0", ["not-on-the-image"]),
         "extra_pkg-1.0-py3-none-any.whl needs not-on-the-image"),
        (lambda r: (r / ".anchors" / "bench_official_glide.py").unlink(), ".anchors/bench_official_glide.py is missing"),
        (lambda r: (r / ".anchors" / "glide-text2im" / "glide_text2im" / "model_creation.py").unlink(),
         "model_creation.py is missing"),
        (lambda r: (r / "benchmarks" / "gpu_suite.py").unlink(), "benchmarks/gpu_suite.py is missing"),
        (lambda r: (r / ".git" / "info" / "exclude").write_text("/.whl/\n"), ".anchors/ is not ignored"),
    ],
)  # fmt: skip
def test_each_missing_piece_is_a_problem(checkout, change, problem):
    change(checkout)
    problems = _check(checkout)
    assert any(problem in p for p in problems), problems


def test_a_wheel_needed_by_another_wheel_must_travel(checkout):
    (checkout / ".whl" / "wcwidth-0.9.4-py3-none-any.whl").unlink()
    problems = _check(checkout)
    assert any("ftfy-6.3.1-py3-none-any.whl needs wcwidth" in p for p in problems), problems


def test_size_and_command_limits(checkout):
    tree, carried = gpu_prepare.travelling_bytes(checkout)
    assert tree > 0 and carried > 0
    too_small = tree + carried - 1
    assert any("would travel" in p for p in _check(checkout, limit_bytes=too_small))
    assert _check(checkout, limit_bytes=tree + carried) == []
    assert any("2001 characters" in p for p in gpu_prepare.check(checkout, "x" * 2001))
    (checkout / "untracked.bin").write_bytes(b"\0" * 1000)  # untracked, not ignored: it travels too
    assert gpu_prepare.travelling_bytes(checkout)[0] == tree + 1000


def test_ensure_excluded_is_idempotent(checkout):
    exclude = checkout / ".git" / "info" / "exclude"
    text = exclude.read_text()
    assert gpu_prepare.ensure_excluded(checkout) == []
    assert exclude.read_text() == text


def test_download_command_pins_the_lock_and_targets_the_gpu_python(checkout):
    versions = gpu_prepare.locked_versions(checkout / "uv.lock")
    assert versions == VERSIONS
    cmd = gpu_prepare.download_command(["python3", "-m", "pip"], versions, Path(".whl"))
    assert cmd[:5] == ["python3", "-m", "pip", "download", "--no-deps"]
    text = " ".join(cmd)
    assert "--only-binary=:all: --python-version 3.12 --implementation cp" in text
    for platform in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"):
        assert f"--platform {platform}" in text
    assert cmd[-5:] == [f"{n}=={v}" for n, v in VERSIONS.items()] and "-d .whl" in text


def test_prepare_copies_the_anchors_and_downloads_only_what_is_missing(checkout, tmp_path, monkeypatch):
    src = tmp_path / "shared" / "anchors"
    (src / "glide-text2im" / "glide_text2im" / "__pycache__").mkdir(parents=True)
    (src / "bench_official_glide.py").write_text("print('new')\n")
    (src / "glide-text2im" / "glide_text2im" / "model_creation.py").write_text("x = 1\n")
    (src / "glide-text2im" / "glide_text2im" / "__pycache__" / "m.pyc").write_bytes(b"\0")
    (checkout / ".whl" / "braceexpand-0.1.7-py3-none-any.whl").unlink()
    calls = []
    real_run = subprocess.run

    def fake_run(cmd, **kw):  # the network stays out of the test: record the download, make the wheel
        if "download" not in cmd:
            return real_run(cmd, **kw)  # git
        calls.append(cmd)
        make_wheel(checkout / ".whl", "braceexpand", "0.1.7")
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(gpu_prepare.subprocess, "run", fake_run)
    gpu_prepare.prepare(checkout, src, ["python3", "-m", "pip"])
    assert len(calls) == 1 and calls[0][-1] == "braceexpand==0.1.7"
    assert (checkout / ".anchors" / "bench_official_glide.py").read_text() == "print('new')\n"
    assert not list((checkout / ".anchors").rglob("__pycache__"))
    monkeypatch.undo()
    assert _check(checkout) == []


def test_git_commit_marks_a_changed_tracked_file_dirty(checkout, tmp_path):
    import _common

    full, short = _common.git_commit(checkout), _common.git_commit(checkout, short=12)
    assert len(full) == 40 and full.startswith(short) and len(short) == 12  # .whl/, .anchors/: not dirty
    (checkout / "uv.lock").write_text((checkout / "uv.lock").read_text() + "\n")
    assert _common.git_commit(checkout, short=12) == short + "-dirty"
    outside = tmp_path / "not_a_checkout"
    outside.mkdir()
    assert _common.git_commit(outside) is None
