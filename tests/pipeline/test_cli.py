"""synth-pipeline's command line: expected mistakes are one line on stderr and exit status 2."""

from __future__ import annotations

import pytest

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


def test_help_lists_the_stages_and_the_main_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "--smoke" in text and "synth-pipeline --dataset cifar10 --images-per-class 4 --smoke --out" in text
