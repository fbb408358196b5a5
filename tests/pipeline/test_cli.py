"""synth-pipeline's command line: expected mistakes are one line on stderr and exit status 2."""

from __future__ import annotations

import pytest

from synthdata.shards import make_demo
from synthdata.tools.pipeline import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "no-such-set", "--smoke"], "no-such-set"),
        (["--dataset", "cifar10"], "--eval DIR"),
        (["--dataset", "cifar10", "--smoke", "--shots", "4"], "--few-shot DIR and --shots K go together"),
        (["--dataset", "cifar10", "--smoke", "--images-per-class", "2", "--keep-per-class", "3"], "more than"),
        (["--dataset", "cifar10", "--smoke", "--redo", "paint"], "unknown stage"),
    ],
)
def test_mistakes_are_one_line(tmp_path, capsys, argv, message):
    out = tmp_path / "R"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("synth-pipeline: error: ") and message in err and "\n" not in err
    assert not out.exists()


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory):
    """An ImageFolder and a shard directory of 3 classes x 2 images."""
    root = tmp_path_factory.mktemp("real")
    return {
        "folder": make_demo(root / "folder", classes=3, per_class=2, size=16, imagefolder=True),
        "shards": make_demo(root / "shards", classes=3, per_class=2, size=16),
    }


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--eval", "{folder}"], "--eval"),  # 3 class folders for cifar10's 10 classes
        (["--eval", "{shards}"], "3 classes"),
        (["--few-shot", "{shards}", "--shots", "1"], "--few-shot"),
    ],
)
def test_real_data_is_checked_before_anything_is_written(tmp_path, capsys, three_classes, flags, message):
    out = tmp_path / "new" / "R"
    flags = [three_classes.get(f.strip("{}"), f) if f.startswith("{") else f for f in flags]
    assert main(["--dataset", "cifar10", "--smoke", *map(str, flags), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("synth-pipeline: error: ") and message in err and "\n" not in err
    assert not (tmp_path / "new").exists()


def test_too_few_images_for_the_shots(tmp_path, capsys, three_classes):
    classes = tmp_path / "c.txt"
    classes.write_text("red stripes\nblue dots\ngreen checks\n")
    out = tmp_path / "R"
    argv = ["--classes", str(classes), "--smoke", "--few-shot", str(three_classes["folder"]), "--shots", "3"]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "fewer than --shots 3" in err and "\n" not in err and not out.exists()


def test_help_lists_the_stages_and_the_main_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "--smoke" in text and "synth-pipeline --dataset cifar10 --images-per-class 4 --smoke --out" in text
