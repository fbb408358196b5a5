"""In-process pre-training: learning, exact resume, checkpoints that load with weights_only=True."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest
import torch

from synthdata.pretrain import PretrainError, load_checkpoint, read_metrics, train
from synthdata.pretrain.checkpoint import FORMAT, capture_rng, restore_rng, save_checkpoint

from ._helpers import CLASSES, tiny_config


def _epochs(out: Path) -> list[dict]:
    return [r for r in read_metrics(out / "metrics.jsonl") if r["event"] == "epoch"]


def test_interrupted_run_resumes_to_the_same_weights(demo_shards: Path, tmp_path: Path) -> None:
    opts = {"epochs": 3, "ema": True, "ema_decay": 0.9, "mixup": 0.2, "drop_path": 0.1}
    whole = train(tiny_config(demo_shards, tmp_path / "whole", **opts))
    assert whole["finished"] and whole["completed_epochs"] == 3

    part = train(tiny_config(demo_shards, tmp_path / "part", stop_after_epochs=1, **opts))
    assert not part["finished"] and part["completed_epochs"] == 1
    rest = train(tiny_config(demo_shards, tmp_path / "part", **opts))
    assert rest["finished"] and rest["epochs_this_run"] == 2

    a = load_checkpoint(tmp_path / "whole/checkpoints/last.pt")
    b = load_checkpoint(tmp_path / "part/checkpoints/last.pt")
    for group in ("model", "ema"):
        assert a[group].keys() == b[group].keys()
        for name in a[group]:
            assert torch.equal(a[group][name], b[group][name]), f"{group}.{name} differs after resume"
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    # the per-epoch losses agree too, not only the end point
    assert [r["train_loss"] for r in _epochs(tmp_path / "whole")] == [
        r["train_loss"] for r in _epochs(tmp_path / "part")
    ]
    starts = [r for r in read_metrics(tmp_path / "part/metrics.jsonl") if r["event"] == "start"]
    assert [s["resumed"] for s in starts] == [False, True]

    # a finished run is a no-op when rerun
    again = train(tiny_config(demo_shards, tmp_path / "whole", **opts))
    assert again["epochs_this_run"] == 0 and again["finished"]


def test_loss_falls_and_checkpoint_loads_weights_only(demo_shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny_config(demo_shards, out, epochs=4, workers=1, accum_steps=2, log_every=1, smoothing=0.0))
    epochs = _epochs(out)
    assert [r["epoch"] for r in epochs] == [1, 2, 3, 4]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert all(r["images_per_s_per_gpu"] > 0 and 0 <= r["data_wait_share"] <= 1 for r in epochs)
    assert all(r["shards_read_by_several_ranks"] == 0 and r["shards_per_rank"] == [8] for r in epochs)
    steps = [r for r in read_metrics(out / "metrics.jsonl") if r["event"] == "step"]
    assert len(steps) == 4 * 8 // 2  # 4 epochs of 8 micro-batches, an update every 2
    raw = torch.load(out / "checkpoints/last.pt", map_location="cpu", weights_only=True)
    assert raw["format"] == FORMAT and raw["epoch"] == 4 and raw["num_classes"] == CLASSES
    assert sorted(p.name for p in (out / "checkpoints").glob("epoch_*.pt")) == [
        "epoch_002.pt",
        "epoch_003.pt",
        "epoch_004.pt",
    ]
    assert (out / "config.json").is_file()


def test_resume_refuses_other_settings(demo_shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny_config(demo_shards, out, epochs=1))
    with pytest.raises(PretrainError, match="settings mismatch"):
        train(tiny_config(demo_shards, out, epochs=2, img_size=48))
    # --fresh (resume=False) starts over, other settings and all, and replaces the old checkpoint
    summary = train(tiny_config(demo_shards, out, epochs=2, img_size=48, resume=False))
    assert summary["completed_epochs"] == 2
    raw = torch.load(out / "checkpoints/last.pt", map_location="cpu", weights_only=True)
    assert raw["epoch"] == 2 and raw["config"]["img_size"] == 48


def test_checkpoint_helpers(tmp_path: Path) -> None:
    state = capture_rng(torch.device("cpu"))
    expected = torch.rand(3)
    restore_rng(state, torch.device("cpu"))
    assert torch.equal(torch.rand(3), expected)
    obj = {"format": FORMAT, "epoch": 1, "rng": [state], "model": {"w": torch.ones(2)}}
    save_checkpoint(obj, tmp_path, 1, keep=1)
    save_checkpoint({**obj, "epoch": 2}, tmp_path, 2, keep=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_002.pt", "last.pt"]
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2
    torch.save({"format": "other"}, tmp_path / "foreign.pt")
    with pytest.raises(PretrainError, match=r"not a synthdata\.pretrain checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "truncated.pt").write_bytes((tmp_path / "last.pt").read_bytes()[:100])
    with pytest.raises(PretrainError, match="cannot be read"):
        load_checkpoint(tmp_path / "truncated.pt")
    with pytest.raises(PretrainError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def _break_one_image(src: Path, dst: Path) -> None:
    """Copy a shard directory and replace the first PNG of its first shard by bytes that do not decode."""
    shutil.copytree(src, dst)
    shard = sorted(dst.glob("*.tar"))[0]
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    broken = next(i for i, (m, _) in enumerate(members) if m.name.endswith(".png"))
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        for i, (member, data) in enumerate(members):
            data = b"not a png" if i == broken else data
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))


def test_corrupt_samples_raise_or_are_counted(demo_shards: Path, tmp_path: Path) -> None:
    data = tmp_path / "broken"
    _break_one_image(demo_shards, data)
    with pytest.raises(PretrainError, match="--on-error warn"):
        train(tiny_config(data, tmp_path / "strict", epochs=1, workers=1))
    with pytest.warns(UserWarning, match="skipped a corrupt sample"):
        train(tiny_config(data, tmp_path / "lenient", epochs=1, on_error="warn"))
    # skips inside DataLoader worker processes are counted too (shared memory)
    train(tiny_config(data, tmp_path / "workers", epochs=1, on_error="warn", workers=2))
    for run in ("lenient", "workers"):
        (epoch,) = _epochs(tmp_path / run)
        assert epoch["skipped_samples"] == 1 and epoch["samples"] == 64


def test_resampled_epochs(demo_shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = train(tiny_config(demo_shards, out, epochs=1, resampled=True, epoch_samples=40, workers=1))
    assert summary["finished"]
    (epoch,) = _epochs(out)
    assert epoch["samples"] == 40 and epoch["step"] == 5


def test_raising_epochs_rebuilds_the_schedule(
    demo_shards: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "run"
    train(tiny_config(demo_shards, out, epochs=1, min_lr=1e-5))
    first = _epochs(out)[0]["lr"]
    assert first == pytest.approx(1e-5)  # the end of a one-epoch cosine
    with caplog.at_level("WARNING"):
        summary = train(tiny_config(demo_shards, out, epochs=3, min_lr=1e-5))
    assert "changed: epochs" in caplog.text and summary["completed_epochs"] == 3
    lrs = [r["lr"] for r in _epochs(out)]
    assert lrs[1] > lrs[2] == pytest.approx(1e-5)  # a 3-epoch cosine, resumed after its first epoch
    assert load_checkpoint(out / "checkpoints/last.pt")["global_update"] == 3 * 8
