"""The acceptance run: ``torchrun --nproc-per-node 2 --no-python synth-pretrain`` on the CPU (gloo), stopped
twice inside an epoch and rerun each time: first preempted by a SIGTERM that reaches rank 1 only (both ranks
agree, save and exit with code 143), then killed with SIGKILL. Each rerun resumes from the checkpoint taken
inside that epoch (the preemption's, then ``--save-every-steps``'s), the run finishes with disjoint shards per
rank, and (slow test) bit-identical to a run that was never interrupted.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from synthdata.pretrain import load_checkpoint, read_metrics

EPOCHS = 4  # of 4 updates each (64 samples, 2 ranks x batch 8)
SAVE_EVERY = 2
PREEMPT_AT = 3  # rank 1 alone gets SIGTERM after update 3, inside epoch 1 (micro-batch 3 of 4)
KILL_AFTER = 7  # inside epoch 2, one update after its checkpoint at update 6 (micro-batch 2 of 4)


def _command(data: Path, out: Path) -> list[str]:
    bindir = Path(sys.executable).parent
    torchrun = shutil.which("torchrun", path=str(bindir)) or shutil.which("torchrun")
    script = shutil.which("synth-pretrain", path=str(bindir)) or shutil.which("synth-pretrain")
    if torchrun is None or script is None:
        pytest.skip("torchrun / synth-pretrain are not installed as scripts")
    return [
        torchrun, "--standalone", "--nproc-per-node", "2", "--no-python", script,
        "--data", str(data), "--model", "test_resnet", "--img-size", "32", "--epochs", str(EPOCHS),
        "--batch-size", "8", "--lr", "3e-3", "--workers", "1", "--shuffle", "32", "--device", "cpu",
        "--out", str(out), "--log-keys",
    ]  # fmt: skip


def _descendants(pid: int) -> list[int]:
    """Child processes, recursively (torchrun starts each rank in a session of its own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(pid: int) -> None:
    for victim in [*_descendants(pid), pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **extra}


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds ranks to kill in /proc")


def _run(cmd: list[str], **env: str) -> tuple[int, str]:
    proc = subprocess.Popen(
        cmd, env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        output = proc.communicate(timeout=240)[0].decode()
    finally:
        if proc.poll() is None:
            _kill_tree(proc.pid)
            proc.wait()
    return proc.returncode, output


@pytest.fixture(scope="module")
def killed_run(demo_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    """A 2-rank run preempted inside epoch 1 by a SIGTERM to rank 1 alone, rerun and SIGKILLed (rank 0)
    inside epoch 2, then rerun to the end: (out, killed at, stdout).

    Both stops come from the trainer's test hooks (rank 1 sends itself SIGTERM right after update
    ``PREEMPT_AT``; rank 0 sends itself SIGKILL right after update ``KILL_AFTER``), so they land at known
    updates. (torchrun itself forwards a SIGTERM to every rank; a scheduler may signal one node only.)
    """
    out = tmp_path_factory.mktemp("torchrun") / "run"
    cmd = [*_command(demo_shards, out), "--save-every-steps", str(SAVE_EVERY)]
    # to rank 1's process group, as torchrun would: its DataLoader worker must survive it
    code, output = _run(cmd, SYNTHDATA_PRETRAIN_SIGNAL_AFTER_UPDATES=f"{PREEMPT_AT}@1:TERM:group")
    # every rank left with the preemption code (torchrun lists its ranks' codes, and exits 1 itself)
    codes = re.findall(r"rank\s*:\s*(\d+) \(local_rank: \d+\)\s*exitcode\s*:\s*(\d+)", output)
    assert code != 0 and sorted(codes) == [("0", "143"), ("1", "143")], output
    assert f"preempted by SIGTERM after update {PREEMPT_AT}" in output and "error:" not in output, output
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert (ckpt["epoch"], ckpt["global_update"], ckpt["in_epoch"]["micro_batches"]) == (0, 3, 3)
    assert len(ckpt["rng"]) == 2 and len(ckpt["in_epoch"]["ranks"]) == 2
    (stop,) = [r for r in read_metrics(out / "metrics.jsonl") if r["event"] == "preempted"]
    assert (stop["signal"], stop["ranks"], stop["step"]) == ("SIGTERM", [1], PREEMPT_AT)

    code, output = _run(cmd, SYNTHDATA_PRETRAIN_KILL_AFTER_UPDATES=str(KILL_AFTER))
    assert code != 0, f"the run was not killed:\n{output}"
    start = [r for r in read_metrics(out / "metrics.jsonl") if r["event"] == "start"][-1]
    assert (start["resumed_at_update"], start["resumed_at_micro_batch"]) == (PREEMPT_AT, 3)
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt["in_epoch"] is not None, "last.pt is not the checkpoint taken inside epoch 2"
    assert (ckpt["epoch"], ckpt["global_update"], ckpt["in_epoch"]["micro_batches"]) == (1, 6, 2)
    assert not (out / "checkpoints" / "epoch_002.pt").exists()
    killed_at = ckpt["global_update"]

    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return out, killed_at, done.stdout


@needs_proc
def test_torchrun_two_ranks_killed_and_resumed(killed_run: tuple[Path, int, str]) -> None:
    out, killed_at, stdout = killed_run
    assert f"finished after epoch {EPOCHS}/{EPOCHS}" in stdout
    records = read_metrics(out / "metrics.jsonl")
    starts = [r for r in records if r["event"] == "start"]
    assert starts[-1]["resumed"] and starts[-1]["completed_epochs"] == 1
    assert starts[-1]["resumed_at_update"] == killed_at and starts[-1]["resumed_at_micro_batch"] == 2
    assert starts[-1]["world_size"] == 2
    epochs = {r["epoch"]: r for r in records if r["event"] == "epoch"}  # a re-done epoch replaces its line
    assert sorted(epochs) == list(range(1, EPOCHS + 1))
    assert epochs[EPOCHS]["train_loss"] < epochs[1]["train_loss"]
    for record in epochs.values():
        assert record["shards_read_by_several_ranks"] == 0 and record["shards_per_rank"] == [4, 4]
    # the keys each rank trained on are disjoint, every epoch
    for epoch in range(1, EPOCHS + 1):
        ranks = [
            set((out / "keys" / f"epoch{epoch:03d}-rank{r:03d}.txt").read_text().split()) for r in (0, 1)
        ]
        assert ranks[0] and ranks[1] and not ranks[0] & ranks[1]

    final = torch.load(out / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert final["epoch"] == EPOCHS and final["world_size"] == 2 and len(final["rng"]) == 2


@needs_proc
@pytest.mark.slow
def test_torchrun_resume_is_bit_exact(
    killed_run: tuple[Path, int, str], demo_shards: Path, tmp_path: Path
) -> None:
    out = tmp_path / "whole"
    done = subprocess.run(_command(demo_shards, out), env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    whole = load_checkpoint(out / "checkpoints" / "last.pt")
    resumed = load_checkpoint(killed_run[0] / "checkpoints" / "last.pt")
    assert whole["model"].keys() == resumed["model"].keys()
    for name, tensor in whole["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), f"{name} differs after a killed and resumed run"
    for param, state in whole["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(value, resumed["optimizer"]["state"][param][key]), f"optimizer {param}.{key}"
    assert whole["global_update"] == resumed["global_update"] == EPOCHS * 4
    # and the same per-epoch losses (the resumed epoch's running sums came from the checkpoint)
    losses = [
        {r["epoch"]: r["train_loss"] for r in read_metrics(run / "metrics.jsonl") if r["event"] == "epoch"}
        for run in (out, killed_run[0])
    ]
    assert losses[0] == losses[1] and len(losses[0]) == EPOCHS
