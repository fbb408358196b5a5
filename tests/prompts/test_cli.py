"""synth-prompts end to end, in-process: the issue's acceptance commands, determinism, errors."""

import json

import pytest

from synthdata.prompts import read_prompts
from synthdata.prompts.le import normalize_text
from synthdata.tools.prompts import main


def test_template_eurosat_acceptance(tmp_path, capsys):
    out = tmp_path / "t.jsonl"
    assert main(["--dataset", "eurosat", "--prompt-method", "template", "--prompts-per-class", "3", "--out", str(out)]) == 0
    recs = read_prompts(out)
    assert len(recs) == 30 and {r.class_index for r in recs} == set(range(10))
    assert all(r.prompt.startswith("a centered satellite photo of") and r.source == "template" for r in recs)
    side = json.loads((tmp_path / "t.jsonl.config.json").read_text())
    assert side["lines"] == 30 and side["method"] == "template" and side["dataset"] == "eurosat"
    assert "30 prompts over 10 classes" in capsys.readouterr().err


def test_le_smoke_acceptance_is_unique_and_reproducible(tmp_path, capsys):
    a, b = tmp_path / "l.jsonl", tmp_path / "again" / "l.jsonl"
    argv = ["--dataset", "cifar10", "--prompt-method", "le", "--prompts-per-class", "5", "--smoke", "--seed", "0"]
    assert main([*argv, "--out", str(a)]) == 0
    assert main([*argv, "--out", str(b), "--quiet"]) == 0
    assert a.read_bytes() == b.read_bytes()
    recs = read_prompts(a)
    assert len(recs) == 50 and all(r.source == "le" and r.prompt.startswith("a photo of ") for r in recs)
    for ci in range(10):
        prompts = [normalize_text(r.prompt) for r in recs if r.class_index == ci]
        assert len(prompts) == len(set(prompts)) == 5
    side = json.loads((tmp_path / "l.jsonl.config.json").read_text())
    assert side["smoke"] and side["shortfall_classes"] == 0 and len(side["classes_summary"]) == 10
    assert not list(tmp_path.glob(".*journal*"))  # a finished run leaves no journal behind
    err = capsys.readouterr().err
    assert "unique prompts per class" in err and "wrote 50 prompts" in err


def test_class_file_with_prefix(tmp_path):
    classes = tmp_path / "c.csv"
    classes.write_text("class_name\nred fox\nsnow owl\n")
    out = tmp_path / "p.jsonl"
    argv = ["--classes", str(classes), "--prompt-method", "template", "--prompts-per-class", "2", "--prefix", "a drawing of"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    assert [r.prompt for r in read_prompts(out)] == ["a drawing of red fox"] * 2 + ["a drawing of snow owl"] * 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "cifar11"], "did you mean cifar10"),
        (["--classes", "/no/such/classes.txt"], "does not exist"),
        (["--dataset", "cifar10", "--le-model", "./no/such/model"], "model directory ./no/such/model does not exist"),
    ],
)
def test_errors_are_one_line_exit_2(tmp_path, capsys, argv, message):
    assert main([*argv, "--prompts-per-class", "2", "--out", str(tmp_path / "x.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("synth-prompts: error:") and message in err and "\n" not in err
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["--out", "x.jsonl"],
        ["--dataset", "cifar10", "--classes", "c.txt", "--out", "x.jsonl"],
        ["--dataset", "cifar10"],
        ["--dataset", "cifar10", "--prompts-per-class", "0", "--out", "x.jsonl"],
        ["--dataset", "cifar10", "--smoke", "--le-model", "m", "--out", "x.jsonl"],
    ],
)
def test_usage_errors(argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_list_datasets(capsys):
    assert main(["--list-datasets"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 17 and "a centered satellite photo of" in out


def test_interrupted_le_run_resumes_to_the_same_file(tmp_path, monkeypatch, capsys):
    from synthdata.prompts.le import LanguageEnhancer

    argv = ["--dataset", "cifar100", "--prompts-per-class", "1", "--smoke", "--seed", "3", "--quiet", "--max-new-tokens", "4"]
    out, ref = tmp_path / "p.jsonl", tmp_path / "ref.jsonl"
    real = LanguageEnhancer.generate
    calls = []

    def interrupt_second_block(self, classnames, config=None, *, progress=None):
        calls.append(len(classnames))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, classnames, config, progress=progress)

    monkeypatch.setattr(LanguageEnhancer, "generate", interrupt_second_block)
    assert main([*argv, "--out", str(out)]) == 130
    assert "rerun the same command to resume" in capsys.readouterr().err
    journal = tmp_path / ".p.jsonl.le-journal.jsonl"
    assert not out.exists() and len(journal.read_text().splitlines()) == 2  # header + block 0

    calls.clear()
    assert main([*argv, "--out", str(out)]) == 0
    assert calls == [36]  # only the second block (classes 64..99) was generated again
    assert not journal.exists()
    monkeypatch.setattr(LanguageEnhancer, "generate", real)
    assert main([*argv, "--out", str(ref), "--fresh"]) == 0
    assert out.read_bytes() == ref.read_bytes() and len(read_prompts(out)) == 100


def test_old_flag_spellings_still_work_with_a_warning(tmp_path, capsys):
    out = tmp_path / "t.jsonl"
    assert main(["--dataset", "eurosat", "--method", "template", "--per-class", "2", "--out", str(out), "--quiet"]) == 0
    assert len(read_prompts(out)) == 20
    err = capsys.readouterr().err
    assert "--method is deprecated; use --prompt-method" in err and "--per-class is deprecated" in err


def test_config_file_then_flags(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text('dataset = "eurosat"\nprompt-method = "template"\nprompts_per_class = 4\n')
    out = tmp_path / "t.jsonl"
    assert main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert len(read_prompts(out)) == 40
    assert main(["--config", str(cfg), "--prompts-per-class", "1", "--out", str(out), "--quiet"]) == 0
    assert len(read_prompts(out)) == 10  # the flag wins over the file


def test_config_file_with_an_unknown_key_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("dataset: eurosat\nper_clas: 3\n")
    with pytest.raises(SystemExit) as info:
        main(["--config", str(cfg), "--out", str(tmp_path / "t.jsonl")])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "has no option 'per_clas'" in err and "\n" not in err and not (tmp_path / "t.jsonl").exists()
