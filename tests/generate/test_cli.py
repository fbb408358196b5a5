"""synth-generate's command line: bad input gives one clear line and exit 2, and nothing half-written."""

import json

import pytest

from synthdata.tools.generate import main

from ._helpers import prompt_records, write_prompts_file


def _err(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("synth-generate: error: ") and "\n" not in err, err
    return err


def test_missing_and_empty_prompts(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert "does not exist; write one with synth-prompts" in _err(
        capsys, ["--prompts", str(tmp_path / "no.jsonl"), "--out", out, "--smoke"]
    )
    (tmp_path / "empty.jsonl").write_text("\n")
    assert "holds no prompts" in _err(
        capsys, ["--prompts", str(tmp_path / "empty.jsonl"), "--out", out, "--smoke"]
    )
    assert not (tmp_path / "out").exists()


def test_malformed_line_is_reported_with_its_number(tmp_path, capsys):
    lines = [json.dumps(r) for r in prompt_records()]
    lines[3] = lines[3][:-5]
    p = tmp_path / "p.jsonl"
    p.write_text("\n".join(lines) + "\n")
    assert f"{p}:4: not JSON" in _err(capsys, ["--prompts", str(p), "--out", str(tmp_path / "o"), "--smoke"])
    lines[3] = json.dumps({"id": "x", "prompt": "y"})
    p.write_text("\n".join(lines) + "\n")
    assert f"{p}:4: expected exactly the fields" in _err(
        capsys, ["--prompts", str(p), "--out", str(tmp_path / "o"), "--smoke"]
    )


def test_duplicate_ids_bad_settings_and_output(tmp_path, capsys):
    recs = prompt_records()
    p = write_prompts_file(tmp_path / "p.jsonl", [*recs, recs[0]])
    assert "appears twice (prompts 1 and 7)" in _err(
        capsys, ["--prompts", str(p), "--out", str(tmp_path / "o"), "--smoke"]
    )
    p = write_prompts_file(tmp_path / "q.jsonl")
    assert "go together" in _err(capsys, ["--prompts", str(p), "--out", str(tmp_path / "o"), "--shots", "2"])
    (tmp_path / "f").write_text("x")
    assert "not a directory" in _err(capsys, ["--prompts", str(p), "--out", str(tmp_path / "f"), "--smoke"])
    assert "--base-respacing 'many'" in _err(
        capsys, ["--prompts", str(p), "--out", str(tmp_path / "o"), "--smoke", "--base-respacing", "many"]
    )
    assert not (tmp_path / "o").exists()


def test_unknown_option_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--prompts", "p", "--out", "o", "--steps", "3"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --steps" in capsys.readouterr().err


def test_missing_weights_offline_is_one_line(tmp_path, capsys):
    p = write_prompts_file(tmp_path / "p.jsonl")
    argv = [
        "--prompts",
        str(p),
        "--out",
        str(tmp_path / "o"),
        "--no-download",
        "--weights-cache",
        str(tmp_path / "c"),
    ]
    err = _err(capsys, argv)
    assert "base.pt" in err and "--smoke" in err
    assert not (tmp_path / "o").exists()
