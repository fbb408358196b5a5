"""End to end: the real stages (tiny random models) on two classes, the rerun that skips everything, a
changed setting that redoes only what it affects, and the report in headless Chromium."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from synthdata.shards import iter_samples, list_shards, make_demo
from synthdata.tools._pipeline import read_marker
from synthdata.tools.pipeline import main

from ._browser import CHROMIUM, dump_dom, rendered_counts


def _stages(out) -> dict[str, str]:
    return {p.stem: json.loads(p.read_text())["finished"] for p in sorted((out / "stages").glob("*.json"))
            if not p.name.endswith(".attempt.json")}


@pytest.fixture(scope="module")
def classes_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("classes") / "pets.txt"
    path.write_text("red fox\nsnow owl\n")
    return path


def test_zero_shot_run_resume_and_report(tmp_path, classes_file, capsys):
    out = tmp_path / "R"
    argv = ["--classes", str(classes_file), "--images-per-class", "2", "--smoke", "--eval-per-class", "1",
            "--out", str(out)]
    assert main(argv) == 0
    # Every stage's output.
    assert len(list_shards(out / "generated")) >= 1
    assert sorted(s.cls for s in iter_samples(out / "generated", decode=False)) == [0, 0, 1, 1]
    scores = [json.loads(line) for line in (out / "filtered.report" / "scores.jsonl").read_text().splitlines()]
    assert len(scores) == 4
    assert len(list(iter_samples(out / "filtered", decode=False))) == 2  # 40% of 2, rounded up, a class
    assert (out / "tune" / "head.safetensors").stat().st_size > 0
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["method"] for r in results] == ["zero-shot", "classifier-tuning", "wise-ft"]
    assert all(r["smoke"] and r["stand_in_test_set"] and r["test_images"] == 2 for r in results)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["classnames"] == ["red fox", "snow owl"] and cfg["config"]["smoke"] is True
    assert read_marker(out, "fewshot") is None  # not a few-shot run
    first = _stages(out)
    assert set(first) == {"prompts", "generate", "filter", "eval", "tune", "report"}
    capsys.readouterr()

    # The same command again: nothing to do.
    t0 = time.perf_counter()
    assert main(argv) == 0
    assert time.perf_counter() - t0 < 10
    assert _stages(out) == first
    assert "nothing to do" in capsys.readouterr().out

    # A tuning setting: only tune and the report are redone.
    assert main([*argv, "--epochs", "2"]) == 0
    again = _stages(out)
    assert {s for s in first if again[s] != first[s]} == {"tune", "report"}

    # A damaged output: the tuner resumes from its checkpoint and writes the head again.
    (out / "tune" / "head.safetensors").unlink()
    assert main([*argv, "--epochs", "2"]) == 0
    assert (out / "tune" / "head.safetensors").is_file()
    assert json.loads((out / "stages" / "tune.json").read_text())["finished"] != again["tune"]

    if shutil.which(CHROMIUM):
        total, ok = rendered_counts(dump_dom(out / "report.html", tmp_path))
        assert total >= 6 and ok == total


def test_few_shot_run_uses_the_same_real_images_for_guidance_and_tuning(tmp_path, classes_file):
    real = make_demo(tmp_path / "real", classes=2, per_class=3, size=32, imagefolder=True)
    out = tmp_path / "R"
    argv = ["--classes", str(classes_file), "--images-per-class", "2", "--smoke", "--eval-per-class", "1",
            "--few-shot", str(real), "--shots", "1", "--prompt-method", "basic", "--until", "tune",
            "--out", str(out)]
    assert main(argv) == 0
    refs = sorted(p.relative_to(out / "few_shot").as_posix() for p in (out / "few_shot").rglob("*.png"))
    assert refs == ["000_red_fox/00000.png", "001_snow_owl/00000.png"]
    metas = [s.meta for s in iter_samples(out / "generated", decode=False)]
    assert len(metas) == 4 and all(m.get("real_guidance") for m in metas)
    tune_cfg = json.loads((out / "tune" / "config.json").read_text())
    assert tune_cfg["data"]["few_shot"]["samples"] == 2 and tune_cfg["data"]["few_shot"]["source"].endswith("few_shot")
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert results[1]["setting"] == "few-shot" and results[1]["shots"] == 1
    assert not (out / "report.html").exists()  # --until tune
