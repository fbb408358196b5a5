"""Checkpoints inside an epoch (``save_every_steps``): a run that crashes mid-epoch and is rerun continues with
exactly the batches it had not trained on and ends bit-identical to an uninterrupted run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from synthdata.pretrain import _trainer as train_module
from synthdata.pretrain import load_checkpoint, read_metrics, train

from ._helpers import tiny_config


class _Crash(Exception):
    """Stands in for the SIGKILL of the test hook (the torchrun test uses the real signal)."""


def _crash() -> None:
    raise _Crash


def _records(out: Path, event: str) -> list[dict]:
    return [r for r in read_metrics(out / "metrics.jsonl") if r["event"] == event]


def _assert_same_state(a: dict, b: dict) -> None:
    for group in ("model", "ema"):
        if a[group] is None:
            assert b[group] is None
            continue
        assert a[group].keys() == b[group].keys()
        for name in a[group]:
            assert torch.equal(a[group][name], b[group][name]), f"{group}.{name} differs after resume"
    state_a, state_b = a["optimizer"]["state"], b["optimizer"]["state"]
    assert state_a.keys() == state_b.keys()
    for param in state_a:
        for name, value in state_a[param].items():
            other = state_b[param][name]
            same = torch.equal(value, other) if isinstance(value, torch.Tensor) else value == other
            assert same, f"optimizer state {param}.{name} differs after resume"
    assert a["global_update"] == b["global_update"]
    assert a["scheduler"] == b["scheduler"]


# (options, kill after update N): 8 micro-batches an epoch with batch 8; 5 with batch 12, whose two
# DataLoader workers run dry after 4 and refill from a second pass
CASES = {
    "in-process-loader-accum-mixup-ema": (
        {"workers": 0, "accum_steps": 2, "mixup": 0.2, "ema": True, "ema_decay": 0.9, "drop_path": 0.1},
        7,  # epoch 2, after its 3rd of 4 updates; the last checkpoint is at update 6 (micro-batch 4)
    ),
    "two-workers-refill-pass": ({"workers": 2, "batch_size": 12, "drop_path": 0.1}, 9),  # epoch 2, after 4 of 5
    "resampled-one-worker": ({"resampled": True, "epoch_samples": 48, "workers": 1}, 9),  # epoch 2, after 3 of 6
}


@pytest.mark.parametrize("case", list(CASES))
def test_crash_mid_epoch_resumes_bit_identical(
    case: str, demo_shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opts, kill_after = CASES[case]
    opts = {"epochs": 2, "log_every": 1, **opts}
    train(tiny_config(demo_shards, tmp_path / "whole", **opts))  # no in-epoch checkpoints at all

    part = tmp_path / "part"
    every = 2
    monkeypatch.setattr(train_module, "_crash", _crash)
    monkeypatch.setenv(train_module.KILL_AFTER_ENV, str(kill_after))
    with pytest.raises(_Crash):
        train(tiny_config(demo_shards, part, save_every_steps=every, **opts))
    monkeypatch.delenv(train_module.KILL_AFTER_ENV)

    saved = torch.load(part / "checkpoints/last.pt", map_location="cpu", weights_only=True)
    pos = saved["in_epoch"]
    assert saved["epoch"] == 1 and pos["epoch"] == 1  # inside the second epoch
    assert saved["global_update"] == kill_after // every * every
    assert pos["micro_batches"] == pos["updates"] * opts.get("accum_steps", 1) > 0
    assert len(pos["ranks"]) == 1 and pos["ranks"][0]["loss_n"] == pos["micro_batches"]
    assert load_checkpoint(part / "checkpoints/epoch_001.pt")["in_epoch"] is None  # epoch file untouched
    assert not (part / "checkpoints/epoch_002.pt").exists()

    summary = train(tiny_config(demo_shards, part, save_every_steps=every, **opts))
    assert summary["finished"] and summary["epochs_this_run"] == 1
    _assert_same_state(
        load_checkpoint(tmp_path / "whole/checkpoints/last.pt"), load_checkpoint(part / "checkpoints/last.pt")
    )
    # the resumed epoch reports what the uninterrupted one did (running sums restored), and so do the step
    # lines (the updates redone after the crash log theirs again; the last line of a step counts)
    whole_epochs, part_epochs = _records(tmp_path / "whole", "epoch"), _records(part, "epoch")
    assert [r["train_loss"] for r in whole_epochs] == [r["train_loss"] for r in part_epochs]
    assert [r["lr"] for r in whole_epochs] == [r["lr"] for r in part_epochs]
    assert part_epochs[-1]["resumed_at_micro_batch"] == pos["micro_batches"]
    whole_steps = {r["step"]: r["train_loss"] for r in _records(tmp_path / "whole", "step")}
    part_steps = {r["step"]: r["train_loss"] for r in _records(part, "step")}
    assert whole_steps == part_steps
    start = _records(part, "start")[-1]
    assert start["resumed_at_micro_batch"] == pos["micro_batches"]
    assert start["resumed_at_update"] == saved["global_update"]


def test_resume_with_another_layout_goes_on_at_the_same_share(
    demo_shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "run"
    monkeypatch.setattr(train_module, "_crash", _crash)
    monkeypatch.setenv(train_module.KILL_AFTER_ENV, "3")
    with pytest.raises(_Crash):
        train(tiny_config(demo_shards, out, epochs=1, save_every_steps=3))
    monkeypatch.delenv(train_module.KILL_AFTER_ENV)
    # half the batch: the 3 x 8 samples trained on are 6 micro-batches of 4
    with caplog.at_level("WARNING"):
        summary = train(tiny_config(demo_shards, out, epochs=1, batch_size=4, save_every_steps=3))
    assert "another data layout" in caplog.text and "not bit-identical" in caplog.text
    assert summary["finished"]
    (epoch,) = _records(out, "epoch")
    assert epoch["resumed_at_micro_batch"] == 6 and epoch["step"] == 16  # the new schedule: 16 updates
    assert load_checkpoint(out / "checkpoints/last.pt")["global_update"] == 16
    assert epoch["train_loss"] > 0


def test_saving_inside_epochs_does_not_change_training(demo_shards: Path, tmp_path: Path) -> None:
    train(tiny_config(demo_shards, tmp_path / "a", epochs=1))
    train(tiny_config(demo_shards, tmp_path / "b", epochs=1, save_every_steps=1))
    _assert_same_state(
        load_checkpoint(tmp_path / "a/checkpoints/last.pt"), load_checkpoint(tmp_path / "b/checkpoints/last.pt")
    )
    saves = _records(tmp_path / "b", "checkpoint")
    assert [r["step"] for r in saves] == list(range(1, 8))  # every update but the epoch's last
    assert load_checkpoint(tmp_path / "b/checkpoints/last.pt")["in_epoch"] is None


def test_replay_warns_when_the_shards_changed(
    demo_shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    data, out = tmp_path / "shards", tmp_path / "run"
    shutil.copytree(demo_shards, data)
    monkeypatch.setattr(train_module, "_crash", _crash)
    monkeypatch.setenv(train_module.KILL_AFTER_ENV, "3")
    with pytest.raises(_Crash):
        train(tiny_config(data, out, epochs=1, save_every_steps=2))
    monkeypatch.delenv(train_module.KILL_AFTER_ENV)
    # same names, counts and classes, other contents under each name: the replayed keys differ
    tars = sorted(data.glob("*.tar"))
    for path in tars:
        path.rename(path.with_suffix(".tmp"))
        path.with_suffix(".idx.json").rename(path.with_suffix(".idx.tmp"))
    for src, dst in zip(tars, tars[1:] + tars[:1], strict=True):
        src.with_suffix(".tmp").rename(dst)
        side = json.loads(src.with_suffix(".idx.tmp").read_text())
        side["shard"] = dst.name  # as a regenerated shard's sidecar would say
        dst.with_suffix(".idx.json").write_text(json.dumps(side))
        src.with_suffix(".idx.tmp").unlink()
    with caplog.at_level("WARNING"):
        assert train(tiny_config(data, out, epochs=1, save_every_steps=2))["finished"]
    assert "hold other samples than the ones trained on" in caplog.text
