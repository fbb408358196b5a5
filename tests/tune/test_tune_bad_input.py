"""synth-tune refuses bad input in one line (exit 2) before creating --out, and a failed run leaves no
directory it created behind."""

from __future__ import annotations

import pytest

from synthdata.clip import DEFAULT_TEMPLATES
from synthdata.shards import demo_classes
from synthdata.tools.tune import main
from synthdata.tune import FeatureCache, TuneConfig, run_tuning

TINY = ["--clip-model", "synthdata-tiny-vit", "--clip-pretrained", "none", "--epochs", "1", "--workers", "0"]

# name: (arguments after --eval, text the error must contain); {demo}/{tmp} are filled in.
BAD = {
    "missing --in, classes from --dataset": (["--in", "{tmp}/nope", "--dataset", "cifar10"], "nope"),
    "missing --in, classes from a file": (["--in", "{tmp}/nope", "--classes", "{tmp}/c4.txt"], "nope"),
    "missing --in, classes from shards": (["--in", "{tmp}/nope", "--classes-from-shards"], "nope"),
    "missing --eval": (["--in", "{train}", "--classes-from-shards", "--eval", "{tmp}/gone"], "gone"),
    "missing --few-shot": (
        ["--in", "{train}", "--classes-from-shards", "--few-shot", "{tmp}/few", "--shots", "1"],
        "few",
    ),
    "too few classes for the shards": (["--in", "{train}", "--classes", "{tmp}/c3.txt"], "class"),
    "unknown dataset": (["--in", "{train}", "--dataset", "no-such-dataset"], "unknown dataset"),
    "unknown model": (["--in", "{train}", "--classes-from-shards", "--clip-model", "RN5O"], "RN5O"),
    "weights offline": (
        ["--in", "{train}", "--classes-from-shards", "--clip-model", "RN50", "--clip-pretrained", "openai"],
        "huggingface.co",
    ),
}


@pytest.fixture
def offline(monkeypatch):
    import open_clip

    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(open_clip, "download_pretrained", refuse)


def _argv(extra: list[str], demo, tmp_path, out) -> list[str]:
    (tmp_path / "c4.txt").write_text("\n".join(demo_classes(4)) + "\n")
    (tmp_path / "c3.txt").write_text("\n".join(demo_classes(3)) + "\n")
    fill = {"{tmp}": str(tmp_path), "{train}": str(demo["train"])}
    extra = [next((a.replace(k, v) for k, v in fill.items() if k in a), a) for a in extra]
    model = TINY if "--clip-model" not in extra else ["--epochs", "1", "--workers", "0"]
    return ["--eval", str(demo["eval"]), *extra, *model, "--out", str(out)]


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_creates_no_out(case, demo, tmp_path, capsys, offline):
    out = tmp_path / "new" / "T"
    extra, expected = BAD[case]
    assert main(_argv(extra, demo, tmp_path, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("synth-tune: error:") and expected in err[-1], err
    assert not (tmp_path / "new").exists()


def test_bad_input_leaves_an_existing_out_as_it_was(demo, tmp_path, capsys, offline):
    out = tmp_path / "T"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(_argv(["--in", str(tmp_path / "nope"), "--classes-from-shards"], demo, tmp_path, out)) == 2
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"


def test_out_that_is_a_file_is_refused(demo, tmp_path, capsys):
    out = tmp_path / "T"
    out.write_text("a file")
    assert main(_argv(["--in", str(demo["train"]), "--classes-from-shards"], demo, tmp_path, out)) == 2
    assert "not a directory" in capsys.readouterr().err and out.read_text() == "a file"


def test_failure_before_any_file_removes_the_out_it_created(demo, tmp_path, monkeypatch):
    def boom(self, *args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(FeatureCache, "get", boom)
    cfg = TuneConfig(model="synthdata-tiny-vit", pretrained="none", epochs=1, workers=0, use_cache=False)
    kwargs = {"classnames": demo_classes(4), "templates": DEFAULT_TEMPLATES[:1], "eval_data": demo["eval"]}
    out = tmp_path / "new" / "T"
    with pytest.raises(RuntimeError, match="disk on fire"):
        run_tuning(cfg, out=out, train=[demo["train"]], **kwargs)
    assert not (tmp_path / "new").exists()  # and the parent it made for it
    existing = tmp_path / "E"
    existing.mkdir()
    with pytest.raises(RuntimeError, match="disk on fire"):
        run_tuning(cfg, out=existing, train=[demo["train"]], **kwargs)
    assert existing.is_dir() and not any(existing.iterdir())
