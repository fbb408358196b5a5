"""The Checkpointer and the Trainer's step on their own: a save inside an epoch restores the generator states,
the position and the running sums exactly; a killed save's temp file goes at the next start; gradient
accumulation updates the weights on the last micro-batch of an update only."""

from __future__ import annotations

import logging
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3

from synthdata.pretrain._checkpointer import Checkpointer, TrainState, seed_all
from synthdata.pretrain._dist import DistInfo
from synthdata.pretrain._epoch import EpochProgress, EpochSums
from synthdata.pretrain._preempt import PreemptionWatch
from synthdata.pretrain._trainer import Trainer, data_layout
from synthdata.pretrain.checkpoint import LAST, load_checkpoint, save_checkpoint
from synthdata.pretrain.data import epoch_batches

from ._helpers import tiny_config

CPU = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
STEPS = 8  # micro-batches an epoch in these tests


def _state(seed: int) -> TrainState:
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    optimizer = create_optimizer_v2(model, opt="adamw", lr=1e-2)
    scheduler, _ = create_scheduler_v2(optimizer, sched="cosine", num_epochs=2, updates_per_epoch=STEPS)
    return TrainState(model, optimizer, scheduler, ModelEmaV3(model, decay=0.5), None)


def _train_a_little(state: TrainState, updates: int) -> None:
    for _ in range(updates):
        state.model(torch.randn(4, 3)).square().mean().backward()
        state.optimizer.step()
        state.optimizer.zero_grad(set_to_none=True)
        state.global_update += 1
        state.scheduler.step_update(num_updates=state.global_update)
        state.ema.update(state.model, step=state.global_update)


def _checkpointer(directory: Path, cfg, **layout_changes) -> Checkpointer:
    layout = {**data_layout(cfg, STEPS, 0, 1, 8), **layout_changes}
    return Checkpointer(directory, CPU, layout)


def _bind(ckpt: Checkpointer, state: TrainState, cfg) -> None:
    run_info = {"config": cfg.to_dict(), "num_classes": 2, "world_size": 1, "updates_per_epoch": STEPS}
    ckpt.bind(state, run_info)


def _draws() -> tuple:
    return torch.rand(3), np.random.rand(3), random.random()


def _same_draws(a: tuple, b: tuple) -> bool:
    return torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def _saved_inside_epoch(tmp_path: Path, cfg) -> tuple[Checkpointer, TrainState, EpochSums, tuple]:
    """A run 5 micro-batches (5 updates) into its second epoch, saved there: (its checkpointer, state, sums,
    the draws its generators make right after the save)."""
    state = _state(seed=1)
    _train_a_little(state, STEPS + 5)
    ckpt = _checkpointer(tmp_path, cfg)
    ckpt.prepare()
    _bind(ckpt, state, cfg)
    sums = EpochSums.fresh(CPU.device)
    for i in range(5):
        sums.add_keys([f"k{i}a", f"k{i}b"])
        sums.add_loss(torch.tensor(0.1 + i / 3, dtype=torch.float32))
    seed_all(123)
    ckpt.save_in_epoch(1, 5, sums)
    return ckpt, state, sums, _draws()


def test_in_epoch_save_restores_generators_position_and_sums_exactly(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "data", tmp_path / "out", epochs=2, batch_size=8)
    _, state, sums, after_save = _saved_inside_epoch(tmp_path, cfg)
    saved = load_checkpoint(tmp_path / LAST)
    assert saved["epoch"] == 1 and saved["in_epoch"]["micro_batches"] == 5 and saved["in_epoch"]["updates"] == 5

    seed_all(999)  # a new process: other generator states, other weights
    fresh = _state(seed=2)
    resumed = _checkpointer(tmp_path, cfg)
    resumed.prepare()
    resumed.load(cfg, num_classes=2)
    assert resumed.resumed
    assert resumed.restore(fresh, cfg, STEPS, STEPS) == 1
    assert resumed.resume.micro_batches == 5 and resumed.resume.exact
    assert fresh.global_update == state.global_update == STEPS + 5
    for a, b in zip(state.model.state_dict().values(), fresh.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(state.ema.state_dict().values(), fresh.ema.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert fresh.optimizer.param_groups[0]["lr"] == state.optimizer.param_groups[0]["lr"]
    assert fresh.scheduler.state_dict() == state.scheduler.state_dict()

    resumed.restore_generators(cfg.seed, 1, workers=0)
    assert _same_draws(_draws(), after_save)

    # the replay of the 5 micro-batches draws from the generators; finish_replay puts them back to the save's
    replayed = EpochSums.fresh(CPU.device)
    for i in range(5):
        replayed.add_keys([f"k{i}a", f"k{i}b"])
        torch.rand(10)
    resumed.finish_replay(replayed, 1)
    assert _same_draws(_draws(), after_save)
    assert replayed.to_saved() == sums.to_saved()  # float64 sums and counts exactly, same keys digest


def test_replayed_keys_that_differ_are_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = tiny_config(tmp_path / "data", tmp_path / "out", epochs=2, batch_size=8)
    _saved_inside_epoch(tmp_path, cfg)
    resumed = _checkpointer(tmp_path, cfg)
    resumed.load(cfg, num_classes=2)
    resumed.restore(_state(seed=2), cfg, STEPS, STEPS)
    resumed.restore_generators(cfg.seed, 1, workers=0)
    other = EpochSums.fresh(CPU.device)
    other.add_keys(["not", "the", "same"])
    with caplog.at_level(logging.WARNING):
        resumed.finish_replay(other, 1)
    assert "hold other samples than the ones trained on" in caplog.text
    assert other.loss_n == 5  # the saved sums are taken all the same


def test_another_layout_resumes_at_the_same_share_of_the_epoch(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "data", tmp_path / "out", epochs=2, batch_size=8)
    _saved_inside_epoch(tmp_path, cfg)
    halved = tiny_config(tmp_path / "data", tmp_path / "out", epochs=2, batch_size=4)
    resumed = _checkpointer(tmp_path, halved, batch_size=4, steps_per_epoch=2 * STEPS)
    resumed.load(halved, num_classes=2)
    fresh = _state(seed=2)
    resumed.restore(fresh, halved, 2 * STEPS, 2 * STEPS)
    # 5 micro-batches of 8 are 10 of 4; the update count follows this run's layout: 1 epoch of 16, then 10
    assert (resumed.resume.micro_batches, resumed.resume.exact) == (10, False)
    assert fresh.global_update == 2 * STEPS + 10
    assert resumed.resume.sums == {"loss_sum": pytest.approx(sum(0.1 + i / 3 for i in range(5))),
                                   "loss_n": 5, "window_sum": 0.0, "window_n": 0}  # fmt: skip


def test_fresh_run_is_seeded_per_rank_and_epoch(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "data", tmp_path / "out")
    draws = []
    for start_epoch in (0, 0, 1):
        ckpt = _checkpointer(tmp_path / "fresh", cfg)
        ckpt.prepare()
        ckpt.load(cfg, num_classes=2)
        assert not ckpt.resumed and ckpt.restore(_state(seed=5), cfg, STEPS, STEPS) == 0
        torch.rand(7)  # whatever ran before does not matter
        ckpt.restore_generators(cfg.seed, start_epoch, workers=0)
        draws.append(_draws())
    assert _same_draws(draws[0], draws[1]) and not _same_draws(draws[0], draws[2])


_KILLED_SAVE = """
import os, signal, sys
from pathlib import Path
import torch
from synthdata.pretrain import checkpoint

def dies_while_writing(obj, fh):
    fh.write(b"x" * 4096)
    fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)

torch.save = dies_while_writing
checkpoint.{call}
"""


@pytest.mark.parametrize(
    "call",
    ["save_in_epoch_checkpoint({}, Path(sys.argv[1]))", "save_checkpoint({}, Path(sys.argv[1]), 2, keep=3)"],
    ids=["in-epoch", "epoch-end"],
)
def test_a_killed_save_leaves_a_temp_file_the_next_start_removes(call: str, tmp_path: Path) -> None:
    directory = tmp_path / "checkpoints"
    obj = {"format": "synthdata.pretrain.checkpoint/1", "epoch": 1, "model": {"w": torch.ones(2)}}
    save_checkpoint(obj, directory, 1, keep=3)
    script = textwrap.dedent(_KILLED_SAVE).format(call=call)
    done = subprocess.run([sys.executable, "-c", script, str(directory)], capture_output=True, timeout=120)
    assert done.returncode == -9, done.stderr.decode()
    (temp,) = [p for p in directory.iterdir() if p.name.startswith(".")]
    assert temp.stat().st_size == 4096
    foreign = directory / ".notes.txt.tmp-1-abcd"  # a temp file of something else stays
    foreign.write_text("keep")
    _checkpointer(directory, tiny_config(tmp_path, tmp_path)).prepare()
    assert sorted(p.name for p in directory.iterdir()) == [foreign.name, "epoch_001.pt", LAST]
    assert load_checkpoint(directory / LAST)["epoch"] == 1  # the last whole checkpoint is untouched


def test_save_before_bind_is_an_error(tmp_path: Path) -> None:
    ckpt = _checkpointer(tmp_path, tiny_config(tmp_path, tmp_path))
    with pytest.raises(RuntimeError, match="bind"):
        ckpt.save_epoch(1, {}, keep=1)
    assert not (tmp_path / LAST).exists()


def test_epoch_sums_window_and_saved_round_trip() -> None:
    sums = EpochSums.fresh(CPU.device)
    for value in (0.25, 1 / 3, 2.0):
        sums.add_loss(torch.tensor(value))
    assert sums.take_window() == (pytest.approx(0.25 + 1 / 3 + 2.0), 3)
    assert sums.take_window() == (0.0, 0)
    sums.add_loss(torch.tensor(1.0))
    copy = EpochSums.fresh(CPU.device)
    copy.load(sums.to_saved())
    assert (copy.loss_sum.item(), copy.loss_n, copy.window_sum.item(), copy.window_n) == (
        sums.loss_sum.item(), 4, 1.0, 1
    )  # fmt: skip


def test_train_step_updates_on_the_last_micro_batch_of_an_update(demo_shards: Path, tmp_path: Path) -> None:
    cfg = tiny_config(demo_shards, tmp_path / "run", accum_steps=2, epochs=1, preempt_signals="none")
    with PreemptionWatch((), CPU) as preempt:
        trainer = Trainer(cfg, CPU, preempt)
    trainer.epoch = EpochProgress(0, EpochSums.fresh(CPU.device), log_keys=True)
    batches = epoch_batches(trainer.source, cfg, trainer.plan, 0, trainer.transform)
    try:
        before = [p.detach().clone() for p in trainer.state.model.parameters()]
        assert trainer.train_step(next(batches)) is False
        assert trainer.state.global_update == 0
        assert all(torch.equal(a, p) for a, p in zip(before, trainer.state.model.parameters(), strict=True))
        assert any(p.grad is not None for p in trainer.state.model.parameters())
        assert trainer.train_step(next(batches)) is True
        assert trainer.state.global_update == 1
        assert not all(torch.equal(a, p) for a, p in zip(before, trainer.state.model.parameters(), strict=True))
        assert all(p.grad is None for p in trainer.state.model.parameters())
    finally:
        batches.close()
    epoch = trainer.epoch
    assert (epoch.micro_batches, epoch.sums.loss_n, len(epoch.keys)) == (2, 2, 2 * cfg.batch_size)
    assert os.listdir(tmp_path / "run" / "checkpoints") == []  # nothing saved by a step alone
