"""Path options take what a user passes (a local path, s3://, gs://, http(s)://) or refuse it with one line,
before anything is read or written; no command ever creates a local folder named after a URL scheme."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

SCHEMES = ("s3:", "gs:", "gcs:", "http:", "https:", "ftp:")

# (command module, argv with {out}); each must refuse its --out URL (synth-generate and synth-filter write to
# object storage, tested with a local S3 server in their own tests, so they are not here).
REFUSED_OUT = {
    "prompts": ["--dataset", "cifar10", "--prompt-method", "template", "--out", "{out}/p.jsonl"],
    "tune": ["--in", "shards", "--eval", "shards", "--dataset", "cifar10", "--out", "{out}"],
    "pretrain": ["--data", "shards", "--device", "cpu", "--out", "{out}"],
    "pipeline": ["--dataset", "cifar10", "--smoke", "--out", "{out}"],
}


def _scheme_folders(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.name.rstrip(":").lower() + ":" in SCHEMES or ":" in p.name]


def _run(module: str, argv: list[str]) -> int:
    main = importlib.import_module(f"synthdata.tools.{module}").main
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.parametrize("scheme", ["s3://bucket/run", "gs://bucket/run", "http://127.0.0.1:1/run"])
@pytest.mark.parametrize("module", sorted(REFUSED_OUT))
def test_unsupported_out_urls_are_refused_in_one_line(module, scheme, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shards").mkdir()
    argv = [a.replace("{out}", scheme) for a in REFUSED_OUT[module]]
    assert _run(module, argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and scheme.split("/")[0] in err and "URL" in err, err
    assert _scheme_folders(tmp_path) == []


@pytest.mark.parametrize(
    ("module", "argv", "flag"),
    [
        ("filter", ["--in", "ftp://host/d", "--out", "o"], "--in"),
        ("generate", ["--prompts", "ftp://host/p.jsonl", "--out", "o", "--smoke"], "--prompts"),
        ("pretrain", ["--data", "ftp://host/d", "--device", "cpu"], "--data"),
        ("tune", ["--in", "ftp://host/d", "--eval", "e", "--dataset", "cifar10", "--out", "o"], "--in"),
        ("prompts", ["--classes", "s3://b/c.txt", "--out", "p.jsonl"], "--classes"),
    ],
)
def test_unknown_schemes_and_url_only_inputs_are_refused(module, argv, flag, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _run(module, argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and flag in err, err
    assert os.listdir(tmp_path) == []


def test_urls_are_printed_intact(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert _run("tune", ["--in", "http://127.0.0.1:9/a/b", "--eval", "e", "--dataset", "cifar10", "--out", "o"]) == 2
    assert "http://127.0.0.1:9/a/b" in capsys.readouterr().err
