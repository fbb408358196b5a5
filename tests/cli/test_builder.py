"""The command builder: options from config fields, layered defaults (field < recipe < --config < flags),
deprecated spellings, negated flags."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from synthdata.shards.options import option
from synthdata.tools._cli import Command


@dataclass(kw_only=True)
class _Cfg:
    model: str = option("RN50", help="CLIP architecture", concept="clip_model")
    batch_size: int = option(64, help="images a batch")
    resume: bool = option(True, help="start over", concept="fresh", negate=True)
    alphas: tuple[float, ...] = option(help="mixing", default_factory=lambda: (0.0, 1.0))
    precision: str = option("auto", help="precision", choices=("auto", "fp32", "fp16"))


RECIPES = {"smoke": {"model": "tiny", "batch_size": 2}, "paper": {"batch_size": 512}}


def _cmd() -> Command:
    cmd = Command("synth-x", "test")
    cmd.add("out", required=True)
    cmd.add_fields(_Cfg)
    cmd.add_recipes(_Cfg, RECIPES)
    cmd.add_run_options()
    cmd.deprecate("--model", "model")
    cmd.deprecate("--dtype", "precision", convert={"float16": "fp16"}.get)
    return cmd


def _build(argv: list[str]) -> _Cfg:
    cmd = _cmd()
    return cmd.build(_Cfg, cmd.parse(argv), RECIPES)


def test_flags_come_from_the_vocabulary_and_the_fields() -> None:
    flags = _cmd().flags()
    assert flags["--clip-model"] == "clip_model" and flags["--fresh"] == "fresh" and flags["--batch-size"]
    assert flags["--out"] == "out" and "--model" not in flags  # the old spelling is not a concept's flag


def test_defaults_then_recipe_then_file_then_flags(tmp_path) -> None:
    assert _build(["--out", "o"]) == _Cfg()
    assert _build(["--out", "o", "--smoke"]) == _Cfg(model="tiny", batch_size=2)
    assert _build(["--out", "o", "--recipe", "paper", "--batch-size", "8"]).batch_size == 8
    f = tmp_path / "c.toml"
    f.write_text('recipe = "smoke"\nbatch-size = 16\nfresh = true\nalphas = [0.0, 0.5]\n')
    cfg = _build(["--out", "o", "--config", str(f)])
    assert (cfg.model, cfg.batch_size, cfg.resume, tuple(cfg.alphas)) == ("tiny", 16, False, (0.0, 0.5))
    assert _build(["--out", "o", "--config", str(f), "--batch-size", "3", "--recipe", "paper"]).batch_size == 3
    assert _build(["--out", "o", "--config", str(f), "--recipe", "paper"]).model == "RN50"  # flags pick the recipe


def test_a_run_record_is_a_config_file(tmp_path) -> None:
    record = tmp_path / "config.json"
    record.write_text(json.dumps({"schema": "x/1", "options": {"clip_model": "ViT-B-32", "resume": False}}))
    cfg = _build(["--out", "o", "--config", str(record)])
    assert (cfg.model, cfg.resume) == ("ViT-B-32", False)


def test_deprecated_spellings_warn_and_convert(capsys) -> None:
    cfg = _build(["--out", "o", "--model", "ViT-B-16", "--dtype", "float16"])
    assert (cfg.model, cfg.precision) == ("ViT-B-16", "fp16")
    err = capsys.readouterr().err
    assert "--model is deprecated; use --clip-model" in err and "--dtype is deprecated; use --precision" in err
    assert "--model" not in _cmd().parser.format_help()  # hidden from --help


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--recipe", "fast"], "--recipe fast: choose one of default, paper, smoke"),
        (["--smoke", "--recipe", "paper"], "--smoke is --recipe smoke"),
        (["--precision", "fp64"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(capsys, argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as info:
        _cmd().parse(["--out", "o", *argv])
    assert info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [("batch_sise = 3\n", ".toml", "has no option 'batch_sise'"), ("{", ".json", "not valid JSON"),
     ("x", ".ini", "unknown file type .ini")],
)
def test_bad_config_files_are_one_line(tmp_path, capsys, text: str, suffix: str, message: str) -> None:
    f = tmp_path / f"c{suffix}"
    f.write_text(text)
    with pytest.raises(SystemExit) as info:
        _cmd().parse(["--out", "o", "--config", str(f)])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and message in err and "\n" not in err


def test_missing_config_file(capsys) -> None:
    with pytest.raises(SystemExit):
        _cmd().parse(["--out", "o", "--config", "/no/such.yaml"])
    assert "--config /no/such.yaml: cannot read it" in capsys.readouterr().err


def test_a_required_option_may_come_from_the_config_file(tmp_path) -> None:
    f = tmp_path / "c.json"
    f.write_text('{"out": "from-file"}')
    cmd = _cmd()
    assert cmd.parse(["--config", str(f)]).out == "from-file"
    assert cmd.parse(["--config", str(f), "--out", "flag"]).out == "flag"
    with pytest.raises(SystemExit):
        _cmd().parse([])  # still required without the file
