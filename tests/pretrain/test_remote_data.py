"""Pre-training straight from object storage and HTTP: ``--data s3://.../DIR`` and ``--data http://.../DIR``
under torchrun (2 ranks, CPU), with no --num-classes or --epoch-samples (dataset.json and the sidecars are
read remotely), and the same weights as a run from the local copy of the same shards."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from synthdata.pretrain import load_checkpoint


def _run(data: str, out: Path) -> None:
    bindir = Path(sys.executable).parent
    torchrun = shutil.which("torchrun", path=str(bindir))
    script = shutil.which("synth-pretrain", path=str(bindir))
    if torchrun is None or script is None:
        pytest.skip("torchrun / synth-pretrain are not installed as scripts")
    command = [
        torchrun, "--standalone", "--nproc-per-node", "2", "--no-python", script, "--data", data,
        "--model", "test_resnet", "--img-size", "32", "--epochs", "1", "--batch-size", "8", "--workers", "1",
        "--device", "cpu", "--out", str(out), "--quiet",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(out / "checkpoints" / "last.pt")["model"]


@pytest.mark.slow
def test_pretrain_from_s3_and_http_equals_local(demo_shards: Path, s3_server, http_server, tmp_path: Path) -> None:
    _run(str(demo_shards), tmp_path / "local")
    s3_url = s3_server.url("demo")
    s3_server.upload(demo_shards, s3_url)
    _run(s3_url, tmp_path / "s3")
    shutil.copytree(demo_shards, http_server.root / "demo")
    _run(http_server.url("demo"), tmp_path / "http")
    local = _weights(tmp_path / "local")
    for name in ("s3", "http"):
        remote = _weights(tmp_path / name)
        assert remote.keys() == local.keys()
        assert all(torch.equal(remote[k], local[k]) for k in local), name
        assert load_checkpoint(tmp_path / name / "checkpoints" / "last.pt")["num_classes"] == 4
