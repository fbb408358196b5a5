"""Checkpoint on preemption, in one process: a real signal (sent by the trainer's test hook to its own process
after update N) makes ``synth-pretrain`` save, exit with the preemption code, and a rerun of the same command
ends bit-identical to an uninterrupted run. The 2-rank case (one rank signalled) is in ``test_torchrun.py``."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from synthdata.pretrain import load_checkpoint, read_metrics
from synthdata.pretrain._models import train_transform
from synthdata.pretrain.config import PretrainError, parse_signals
from synthdata.pretrain.data import epoch_batches, plan_epochs, resolve_source
from synthdata.tools.pretrain import main

from ._helpers import tiny_config
from .test_resume_in_epoch import _assert_same_state
from .test_torchrun import _descendants

preempt_module = sys.modules["synthdata.pretrain._preempt"]

# 64 samples, batch 8: 8 updates an epoch. (workers, hook, extra flags, exit code, expected last.pt position as
# (completed epochs, global update, micro-batches inside the epoch or None))
CASES = {
    # SIGTERM after update 3: saved inside epoch 1 through the --save-every-steps path, exit 143
    "sigterm-inside-epoch": (0, "3", [], 143, (0, 3, 3)),
    # SIGUSR1 at the epoch's last update, a DataLoader worker, another exit code: the epoch checkpoint serves
    "usr1-at-epoch-end": (1, "8@0:USR1", ["--preempt-exit-code", "75"], 75, (1, 8, None)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_signal_saves_stops_and_resumes_bit_identical(
    case: str,
    demo_shards: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    workers, hook, extra, code, (epoch, update, micro_batches) = CASES[case]

    def argv(out: Path) -> list[str]:
        return [
            "--data", str(demo_shards), "--model", "test_resnet", "--img-size", "32", "--epochs", "2",
            "--batch-size", "8", "--lr", "3e-3", "--workers", str(workers), "--shuffle", "32",
            "--device", "cpu", "--save-every-steps", "5", "--out", str(out), *extra,
        ]  # fmt: skip

    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
    assert main(argv(tmp_path / "whole")) == 0
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # restored after a run
    part = tmp_path / "part"
    monkeypatch.setenv(preempt_module.SIGNAL_AFTER_ENV, hook)
    capsys.readouterr()
    try:
        assert main(argv(part)) == code
        # a stopped run leaves the signals ignored (the process is about to exit; a second notice must not
        # kill it while it winds down)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    monkeypatch.delenv(preempt_module.SIGNAL_AFTER_ENV)
    assert f"exit code {code}: rerun the same command to resume" in capsys.readouterr().out

    saved = load_checkpoint(part / "checkpoints/last.pt")
    assert (saved["epoch"], saved["global_update"]) == (epoch, update)
    pos = saved["in_epoch"]
    assert (pos["micro_batches"] if pos else None) == micro_batches
    records = read_metrics(part / "metrics.jsonl")
    (stop,) = [r for r in records if r["event"] == "preempted"]
    sig = "SIGUSR1" if "USR1" in hook else "SIGTERM"
    assert (stop["signal"], stop["ranks"], stop["step"]) == (sig, [0], update)
    assert stop["micro_batches"] == micro_batches
    assert records[-1]["event"] == "summary" and records[-1]["preempted"] == sig
    assert not records[-1]["finished"]

    # a save killed by the scheduler's SIGKILL leaves its temp file (as large as a checkpoint): the rerun drops it
    stale = part / "checkpoints" / ".last.pt.tmp-12345-abcd1234"
    stale.write_bytes(b"partial")
    assert main(argv(part)) == 0  # the same command again
    assert not stale.exists()
    _assert_same_state(
        load_checkpoint(tmp_path / "whole/checkpoints/last.pt"), load_checkpoint(part / "checkpoints/last.pt")
    )
    losses = [
        [r["train_loss"] for r in read_metrics(run / "metrics.jsonl") if r["event"] == "epoch"]
        for run in (tmp_path / "whole", part)
    ]
    assert losses[0] == losses[1] and len(losses[0]) == 2


def test_signal_names() -> None:
    assert parse_signals("TERM,usr1") == (signal.SIGTERM, signal.SIGUSR1)
    assert parse_signals("SIGUSR2, SIGUSR2") == (signal.SIGUSR2,)
    assert parse_signals("none") == () == parse_signals("")
    for bad, message in (("KILL", "cannot be caught"), ("TERM,FOO", "not a signal"), ("SIG_IGN", "not a")):
        with pytest.raises(PretrainError, match=message):
            parse_signals(bad)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the DataLoader worker in /proc")
def test_dataloader_workers_survive_preemption_signals(demo_shards: Path, tmp_path: Path) -> None:
    """A signal to every process of a job (Slurm) or a rank's process group (torchrun) reaches the DataLoader
    workers too; they must keep serving batches (the training process decides when to stop)."""
    cfg = tiny_config(demo_shards, tmp_path / "unused", workers=1)
    source = resolve_source(cfg.data)
    plan = plan_epochs(source, cfg, 1)
    dcfg = {"input_size": [3, 32, 32], "interpolation": "bilinear", "mean": [0.5] * 3, "std": [0.5] * 3}
    batches = epoch_batches(source, cfg, plan, 0, train_transform(dcfg), ignore_signals=(signal.SIGUSR1,))
    try:
        next(batches)
        (worker,) = _descendants(os.getpid())
        os.kill(worker, signal.SIGUSR1)  # its default action ends a process
        time.sleep(0.2)
        assert Path(f"/proc/{worker}").exists()
        assert len(list(batches)) == plan.steps - 1
    finally:
        batches.close()
