"""synth-pretrain called in-process: train (the default subcommand), transfer, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthdata.tools.pretrain import main, parse_args


def test_plain_flags_mean_train() -> None:
    args = parse_args(["--data", "D", "--model", "resnet18", "--img-size", "64", "--device", "cpu"])
    assert args.command == "train" and args.model == "resnet18" and args.img_size == 64
    assert args.save_every_steps == 0  # epoch ends only unless asked
    assert parse_args(["--data", "D", "--save-every-steps", "500"]).save_every_steps == 500
    assert (args.preempt_signals, args.preempt_exit_code) == ("TERM,USR1", 143)  # save on preemption notices
    args = parse_args(["--data", "D", "--preempt-signals", "none", "--preempt-exit-code", "75"])
    assert (args.preempt_signals, args.preempt_exit_code) == ("none", 75)


def test_smoke_defaults_yield_to_given_flags() -> None:
    args = parse_args(["--data", "D", "--smoke", "--epochs", "2"])
    assert (args.model, args.img_size, args.epochs, args.device) == ("test_resnet", 32, 2, "cpu")
    args = parse_args(["transfer", "--checkpoint", "c", "--train", "t", "--eval", "v", "--smoke"])
    assert (args.epochs, args.device, args.mode) == (1, "cpu", "finetune")


def test_train_then_transfer(
    demo_shards: Path, demo_folders: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    common = ["--model", "test_resnet", "--img-size", "32", "--batch-size", "8", "--workers", "0"]
    rc = main(["--data", str(demo_shards), *common, "--epochs", "1", "--device", "cpu", "--out", str(out)])
    assert rc == 0
    assert "finished after epoch 1/1" in capsys.readouterr().out
    train_dir, val_dir = demo_folders
    rc = main(
        ["transfer", "--checkpoint", str(out / "checkpoints/last.pt"), "--train", str(train_dir),
         "--eval", str(val_dir), "--mode", "linear", "--epochs", "1", "--batch-size", "8",
         "--workers", "0", "--device", "cpu"]
    )  # fmt: skip
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= summary["top1"] <= 100 and Path(summary["written_to"]).is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data", "MISSING", "--device", "cpu"], "no such directory"),
        (["--data", "https://x.org/s-{0..3}.tar", "--device", "cpu"], "--num-classes"),
        (["--data", "x", "--epochs", "0", "--device", "cpu"], "--epochs must be >= 1"),
        (["--data", "x", "--save-every-steps", "-1", "--device", "cpu"], "--save-every-steps must be >= 0"),
        (["--data", "x", "--device", "cpu", "--precision", "fp16"], "needs --device cuda"),
        (["--data", "x", "--device", "cpu", "--preempt-signals", "TERM,KILL"], "SIGKILL cannot be caught"),
        (["--data", "x", "--device", "cpu", "--preempt-exit-code", "0"], "--preempt-exit-code must be in 1..255"),
        (["--data", "SHARDS", "--device", "cpu", "--model", "no_such_net"], "timm has no model"),
        (["transfer", "--checkpoint", "MISSING", "--train", "a", "--eval", "b", "--device", "cpu"], "does not exist"),
    ],
)  # fmt: skip
def test_errors_are_one_line(
    argv: list[str], message: str, demo_shards: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = {"MISSING": str(tmp_path / "missing"), "SHARDS": str(demo_shards)}
    argv = [names.get(a, a) for a in argv]
    assert main([*argv, "--out", str(tmp_path / "o")] if argv[0] != "transfer" else argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("synth-pretrain: error: ") and message in err and "\n" not in err
