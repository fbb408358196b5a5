"""The HTML report, from a hand-made finished run directory; and its rendering in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from synthdata.shards import make_demo
from synthdata.tools._pipeline import layout
from synthdata.tools._pipeline.report import render_report
from synthdata.tools._pipeline.stages import StageMarker, write_marker

from ._browser import CHROMIUM, dump_dom, rendered_counts

STAGES = ["prompts", "generate", "filter", "eval", "tune", "report"]


def fake_run(run_dir: Path, classes: list[str]) -> Path:
    """A run directory with every file the report reads, in the formats the stages write."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / layout.CONFIG).write_text(json.dumps({"config": {"dataset": "toy", "smoke": True}, "classnames": classes}))
    (run_dir / layout.PROMPTS).write_text("".join(
        json.dumps({"id": f"c{c}", "class_index": c, "class_name": n, "prompt": f"a photo of a {n}", "source": "le"}) + "\n"
        for c, n in enumerate(classes)
    ))
    make_demo(run_dir / layout.GENERATED_DIR, classes=len(classes), per_class=3, size=32)
    make_demo(run_dir / layout.FILTER_DIR, classes=len(classes), per_class=2, size=32)
    (run_dir / layout.FILTER_REPORT_DIR).mkdir()
    Image.new("RGB", (40, 30), (10, 200, 10)).save(run_dir / layout.FILTER_REPORT_DIR / "confidence_hist.png")
    (run_dir / layout.FILTER_REPORT_DIR / "report.json").write_text(json.dumps({
        "totals": {"samples": 9, "scored": 9, "kept": 6, "dropped": 3, "unreadable": 0},
        "settings": {"rule": "paper", "threshold_used": 1 / 3, "model_artifact": "clip.tiny.none"},
        "classes": [{"index": i, "name": n, "scored": 3, "kept": 2, "dropped": 1, "unreadable": 0,
                     "mean_confidence": 0.4, "chosen_instead": {classes[(i + 1) % 3]: 1}} for i, n in enumerate(classes)],
        "files": {"confidence_hist": str(run_dir / layout.FILTER_REPORT_DIR / "confidence_hist.png")},
    }))
    make_demo(run_dir / layout.FEW_SHOT_DIR, classes=len(classes), per_class=1, size=32, imagefolder=True)
    (run_dir / layout.TUNE_DIR).mkdir()
    Image.new("RGB", (30, 30), (200, 10, 10)).save(run_dir / layout.TUNE_DIR / "confusion.png")
    (run_dir / layout.TUNE_DIR / "train_log.jsonl").write_text("".join(
        json.dumps({"epoch": e, "step": 2 * e, "lr": 1e-3 / e, "loss": 2.0 / e, "syn_loss": 1.5 / e, "real_loss": 0.0,
                    "train_top1": 0.3 * e / 3, "seconds": 0.1}) + "\n" for e in (1, 2, 3)
    ))
    rows = [
        {"method": "zero-shot", "setting": "zero-shot", "model": "tiny", "top1": 0.25, "mean_per_class": 0.25,
         "per_class": [0.5, 0.25, 0.0], "test_images": 6},
        {"method": "classifier-tuning", "setting": "zero-shot", "model": "tiny", "top1": 0.5, "mean_per_class": 0.5,
         "per_class": [0.5, 0.5, 0.5], "test_images": 6},
        {"method": "wise-ft", "setting": "zero-shot", "model": "tiny", "top1": 0.5, "alpha": 0.5},
    ]
    (run_dir / layout.RESULTS).write_text("".join(json.dumps(r) + "\n" for r in rows))
    for i, stage in enumerate(STAGES[:-1]):
        write_marker(run_dir, StageMarker(stage=stage, config={}, config_hash="h", inputs={}, outputs={},
                                          started="2026-01-01T00:00:00+00:00", finished="2026-01-01T00:00:01+00:00",
                                          seconds=0.5 + i))
    return run_dir


CLASSES = ["cat", "dog <b>&amp;", "red fox"]


def test_report_has_every_section_and_escapes_text(tmp_path):
    run_dir = fake_run(tmp_path / "R", CLASSES)
    html = render_report(run_dir, STAGES).read_text("utf-8")
    for anchor in ("accuracy", "training", "filter", "sheets", "prompts", "timings"):
        assert f'id="{anchor}"' in html
    assert "dog &lt;b&gt;&amp;amp;" in html and "<b>&amp;" not in html
    assert 'id="smoke-warning"' in html
    assert "+25.00" in html  # tuned vs zero-shot, in points
    srcs = re.findall(r'<img src="([^"]+)"', html)
    for src in srcs:
        assert (run_dir / src).is_file(), src
        assert not Path(src).is_absolute()
    names = {Path(s).name for s in srcs}
    assert {"timings.png", "training.png", "filter_per_class.png", "accuracy_per_class.png",
            "confidence_hist.png", "sheet_generated-00.png", "sheet_kept-00.png", "sheet_real-00.png",
            "confusion.png"} <= names
    assert "wise-ft (best α = 0.5)" in html


def test_report_of_an_unfinished_run_still_renders(tmp_path):
    run_dir = tmp_path / "R"
    run_dir.mkdir()
    html = render_report(run_dir, STAGES).read_text("utf-8")
    assert "No results yet" in html and "<img" not in html.split("<script>")[0]


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian chromium is not installed")
def test_report_renders_in_headless_chromium_with_its_images(tmp_path):
    run_dir = fake_run(tmp_path / "R", CLASSES)
    html_path = render_report(run_dir, STAGES)
    dom = dump_dom(html_path, tmp_path)
    total, ok = rendered_counts(dom)
    assert total >= 7 and ok == total, (total, ok)
    assert "synth-pipeline: toy" in dom
    # The check is real: a missing figure is seen as not rendered.
    (run_dir / layout.REPORT_DIR / "training.png").unlink()
    total, ok = rendered_counts(dump_dom(html_path, tmp_path))
    assert ok == total - 1


def test_each_section_reports_the_facts_it_shows(tmp_path):
    from synthdata.tools._pipeline.report import report_sections

    run_dir = fake_run(tmp_path / "R", CLASSES)
    sections = report_sections(run_dir, STAGES)
    head, accuracy, training, filt, sheets, prompts, timings = sections
    assert head.facts == {"title": "toy", "smoke": True, "classes": 3}
    assert [r[0] for r in accuracy.facts["rows"]] == ["zero-shot", "classifier-tuning", "wise-ft (best α = 0.5)"]
    assert accuracy.facts["rows"][1][5] == "+25.00" and accuracy.facts["rows"][0][5] == ""
    assert training.facts["epochs"] == 3 and training.facts["steps"] == 6 and training.facts["final_loss"] == 0.6667
    assert filt.facts["summary"] == [9, 6, 3, 0, "paper", 1 / 3, "clip.tiny.none"] and filt.facts["classes"] == 3
    assert sheets.facts["figures"] == ["sheet_real-00.png", "sheet_generated-00.png", "sheet_kept-00.png"]
    assert prompts.facts["prompts"] == 3 and [r[2] for r in prompts.facts["rows"]] == [
        f"a photo of a {n}" for n in CLASSES
    ]
    assert timings.facts["seconds"] == {s: 0.5 + i for i, s in enumerate(STAGES[:-1])}
    assert timings.facts["total"] == sum(0.5 + i for i in range(5))
    # Every figure a section names is on the page inside that section's HTML, and nothing else is.
    html = render_report(run_dir, STAGES).read_text("utf-8")
    shown = []
    for section in sections:
        assert re.sub(r"written [^;]+;", "", section.html) in re.sub(r"written [^;]+;", "", html)
        names = section.facts.get("figures", [])
        assert sorted(names) == sorted(Path(s).name for s in re.findall(r'<img src="([^"]+)"', section.html))
        shown += names
    assert sorted(shown) == sorted(Path(s).name for s in re.findall(r'<img src="([^"]+)"', html))


def test_filter_figures_are_the_ones_the_filter_package_names(tmp_path):
    from synthdata.filter import layout as filter_layout

    run_dir = fake_run(tmp_path / "R", CLASSES)
    fig_dir = run_dir / layout.FILTER_REPORT_DIR
    report = json.loads((run_dir / layout.FILTER_REPORT_DIR / filter_layout.REPORT_FILE).read_text())
    for name in (*filter_layout.REPORT_PNGS, "stray.png"):
        Image.new("RGB", (8, 8)).save(fig_dir / name)
        report["files"][Path(name).stem] = f"/moved/away/{layout.FILTER_REPORT_DIR}/{name}"
    (fig_dir / filter_layout.LEAST_CONFIDENT_PNG).unlink()  # listed but gone: not linked
    (run_dir / layout.FILTER_REPORT_DIR / filter_layout.REPORT_FILE).write_text(json.dumps(report))
    html = render_report(run_dir, STAGES).read_text("utf-8")
    linked = re.findall(rf'<img src="{layout.FILTER_REPORT_DIR}/([^"]+)"', html)
    assert linked == sorted(set(filter_layout.REPORT_PNGS) - {filter_layout.LEAST_CONFIDENT_PNG})


def test_the_tune_file_names_the_report_reads_are_tunes():
    from synthdata.tools._pipeline import report
    from synthdata.tune import run

    assert report.TUNE_TRAIN_LOG == run.TRAIN_LOG_FILE
    assert report.TUNE_CONFUSION == run.CONFUSION_FILE
