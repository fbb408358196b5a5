"""The issue's acceptance, with the real tiny GLIDE models (--smoke) on the CPU: one process, two ranks, and a
run killed with SIGKILL and rerun all give the same keys and pixels."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from synthdata.shards import read_dataset_json, verify_dataset
from synthdata.tools.generate import main
from synthdata.tools.shards import main as shards_main

from ._helpers import read_dir, write_prompts_file

pytestmark = pytest.mark.slow

ARGS = ["--images-per-prompt", "2", "--size", "64", "--smoke", "--quiet"]


def _cli(prompts, out, *extra):
    return [
        sys.executable,
        "-m",
        "synthdata.tools.generate",
        "--prompts",
        str(prompts),
        "--out",
        str(out),
        *ARGS,
        *extra,
    ]


def _env(**kw):
    return os.environ | {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"} | kw


def _sidecars(d):
    return {p.name: json.loads(p.read_text())["sha256"] for p in sorted(d.glob("*.idx.json"))}


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    """6 prompts over 3 classes, the issue's exact command: 12 samples that synth-shards verify accepts."""
    d = tmp_path_factory.mktemp("acc")
    prompts = write_prompts_file(d / "p.jsonl")
    assert (
        main(["--prompts", str(prompts), "--out", str(d / "A"), *ARGS, "--summary-json", str(d / "s.json")])
        == 0
    )
    summary = json.loads((d / "s.json").read_text())
    assert summary["images"] == 12 and summary["device_seconds_per_image"] > 0
    return d, prompts, read_dir(d / "A")


def test_a_single_process(run_a, capsys):
    d, _, samples = run_a
    assert len(samples) == 12
    assert shards_main(["verify", str(d / "A")]) == 0
    assert "12 samples: OK" in capsys.readouterr().out
    info = read_dataset_json(d / "A")
    assert info.classes == ["cat", "dog", "car"]
    assert info.config["fingerprint"]["models"]["base"].startswith("state:")
    assert info.config["pipeline"]["base_options"]["num_channels"] == 32
    meta = next(iter(samples.values()))[2]
    assert (
        meta["smoke"]
        and meta["sampler"]["steps"] == 3
        and meta["models"] == info.config["fingerprint"]["models"]
    )


def _same_pixels(a, b):
    assert a.keys() == b.keys()
    # Another batch layout or thread count rounds float32 differently, and sampling amplifies it a little:
    # measured here, at most 0.2% of an image's values differ, by at most 3 levels of 255.
    for k in a:
        diff = np.abs(a[k][0].astype(int) - b[k][0].astype(int))
        assert diff.max() <= 8 and (diff > 0).mean() < 0.01 and diff.mean() < 0.05, (k, diff.max())
    assert all(a[k][1:] == b[k][1:] for k in a)  # class and metadata (seed, prompt, ...) identical


def test_b_two_ranks_and_c_killed_then_rerun(run_a):
    d, prompts, a = run_a
    # B: two processes, RANK 0 and 1 of 2, three 2-image shards each (a different batch and shard layout than A)
    procs = [
        subprocess.Popen(_cli(prompts, d / "B", "--shard-size", "2"), env=_env(RANK=str(r), WORLD_SIZE="2"),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for r in (0, 1)
    ]  # fmt: skip
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    assert "rank 1/2" in logs[1] and "rank 0/2" in logs[0]
    assert verify_dataset(d / "B").ok
    b = read_dir(d / "B")
    _same_pixels(a, b)

    # C: the same as B on one process, SIGKILLed once its first shard is complete, then rerun
    c = d / "C"
    proc = subprocess.Popen(_cli(prompts, c, "--shard-size", "2"), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.time() + 240
        while not list(c.glob("*.idx.json")) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = _sidecars(c)
    assert 1 <= len(done) < 6 and not (c / "dataset.json").exists()
    assert not verify_dataset(c).ok  # an interrupted directory never reads as a complete dataset
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the subprocesses: the same thread count gives the same float rounding
    try:
        assert main(["--prompts", str(prompts), "--out", str(c), *ARGS, "--shard-size", "2"]) == 0
    finally:
        torch.set_num_threads(threads)
    assert verify_dataset(c).ok
    assert _sidecars(c) == _sidecars(d / "B")  # same shard plan: byte-identical shards
    _same_pixels(a, read_dir(c))
