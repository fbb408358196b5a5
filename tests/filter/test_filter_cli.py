"""synth-filter end to end (tiny random CLIP): valid filtered dataset, scores table, report, bad input."""

from __future__ import annotations

import json
import shutil
import tarfile

import pytest

from synthdata.clip import DEFAULT_TEMPLATES
from synthdata.shards import iter_samples, list_shards, make_demo, read_dataset_json, verify_dataset
from synthdata.tools.filter import main

TINY = ["--clip-model", "synthdata-tiny-rn", "--clip-pretrained", "none", "--device", "cpu", "--workers", "0"]


def _report(out):
    return out.with_name(out.name + ".report")  # scores, report and figures live beside the shards


def _scores(out):
    return [json.loads(line) for line in (_report(out) / "scores.jsonl").read_text().splitlines()]


def test_acceptance_command(demo_dir, tmp_path, capsys):
    out = tmp_path / "F"
    rc = main(["--in", str(demo_dir), "--out", str(out), "--classes-from-shards", "--keep-per-class", "2", *TINY])
    assert rc == 0, capsys.readouterr().err
    assert verify_dataset(out).ok
    info = read_dataset_json(out)
    assert info.classes == read_dataset_json(demo_dir).classes
    assert info.producer == "synth-filter" and info.config["filter"]["rule"] == "paper"
    kept = list(iter_samples(out))
    per_class = {}
    for s in kept:
        per_class[s.cls] = per_class.get(s.cls, 0) + 1
        assert set(s.meta["filter"]) >= {"confidence", "top1", "clip_score", "rule", "model"}
    assert per_class == {0: 2, 1: 2, 2: 2, 3: 2}
    rows = _scores(out)
    assert [r["key"] for r in rows] == sorted(s.key for s in iter_samples(demo_dir))
    for r in rows:
        assert {"key", "class_index", "confidence", "top1", "kept"} <= set(r)
    assert {r["key"] for r in rows if r["kept"]} == {s.key for s in kept}
    for s in kept:  # the image bytes are copied, not re-encoded
        assert s.meta["filter"]["confidence"] == next(r["confidence"] for r in rows if r["key"] == s.key)
    report = json.loads((_report(out) / "report.json").read_text())
    assert report["totals"]["kept"] == 8 and report["totals"]["dropped"] == 4
    assert sum(c["kept"] for c in report["classes"]) == 8
    for png in ("confidence_hist", "confidence_by_class", "most_confident", "least_confident"):
        assert (_report(out) / f"{png}.png").stat().st_size > 1000
    assert "kept 8 of 12" in capsys.readouterr().out


def test_rerun_into_previous_output_redoes_it(demo_dir, tmp_path):
    out = tmp_path / "F"
    args = [
        "--in",
        str(demo_dir),
        "--out",
        str(out),
        "--filter-rule",
        "topk",
        "--keep-per-class",
        "1",
        "--no-report",
        *TINY,
    ]
    assert main(args) == 0
    first = _scores(out)
    assert main(args) == 0
    assert _scores(out) == first
    assert len(list_shards(out)) == 1 and not list(_report(out).glob("*.png"))


def test_refuses_foreign_output_and_input_dir(demo_dir, tmp_path, capsys):
    out = tmp_path / "F"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["--in", str(demo_dir), "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith("synth-filter: error:") and "not a synth-filter output" in err
    assert (out / "notes.txt").exists()
    assert main(["--in", str(demo_dir), "--out", str(demo_dir), *TINY]) == 2
    assert "is the input directory" in capsys.readouterr().err


def test_class_list_mismatch_is_one_line_error(demo_dir, tmp_path, capsys):
    classes = tmp_path / "classes.txt"
    classes.write_text("cat\ndog\nbird\nfish\n")
    rc = main(["--in", str(demo_dir), "--out", str(tmp_path / "F"), "--classes", str(classes), *TINY])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "class 0 is 'cat'" in err


def test_unknown_model_lists_close_matches(demo_dir, tmp_path, capsys):
    rc = main(
        ["--in", str(demo_dir), "--out", str(tmp_path / "F"), "--clip-model", "RN5O", "--clip-pretrained", "none"]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "unknown CLIP model 'RN5O'" in err and "RN50" in err


def _tree(path):
    return {p.relative_to(path).as_posix(): p.read_bytes() if p.is_file() else None for p in path.rglob("*")}


def _no_download(monkeypatch):
    import open_clip

    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(open_clip, "download_pretrained", refuse)


BAD_INPUTS = {
    "missing --in": (["--in", "{tmp}/nope"], "nope"),
    "class list mismatch": (["--classes", "{tmp}/classes.txt"], "class 0 is 'cat'"),
    "unknown model": (["--clip-model", "RN5O", "--clip-pretrained", "none"], "unknown CLIP model"),
    "weights offline": (["--clip-model", "RN50", "--clip-pretrained", "openai"], "huggingface.co"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_creates_no_output_dir(case, demo_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _no_download(monkeypatch)
    (tmp_path / "classes.txt").write_text("cat\ndog\nbird\nfish\n")
    extra, expected = BAD_INPUTS[case]
    extra = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    model = [] if "--clip-model" in extra else TINY
    out = tmp_path / "new" / "F"
    argv = ["--in", str(demo_dir), "--out", str(out), "--device", "cpu", *model, *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("synth-filter: error:") and expected in err[-1]
    assert not (tmp_path / "new").exists()


def test_failed_rerun_leaves_previous_output_and_empty_dir_as_they_were(demo_dir, tmp_path, capsys):
    out = tmp_path / "F"
    assert main(["--in", str(demo_dir), "--out", str(out), "--no-report", *TINY]) == 0
    before = _tree(out) | {f"report/{k}": v for k, v in _tree(_report(out)).items()}
    assert "report/.filter-scores/fingerprint.json" in before
    for extra in (["--clip-model", "RN5O"], ["--fresh", "--clip-model", "RN5O"]):
        rc = main(["--in", str(demo_dir), "--out", str(out), "--no-report", "--device", "cpu", *extra])
        assert rc == 2 and "unknown CLIP model" in capsys.readouterr().err
        assert _tree(out) | {f"report/{k}": v for k, v in _tree(_report(out)).items()} == before
    empty = tmp_path / "E"
    empty.mkdir()
    assert main(["--in", str(demo_dir), "--out", str(empty), "--clip-model", "RN5O", "--clip-pretrained", "none"]) == 2
    assert empty.is_dir() and not any(empty.iterdir()) and not _report(empty).exists()


def _corrupt_first_png(shard):
    with tarfile.open(shard) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".png"))
    data = bytearray(shard.read_bytes())
    for i in range(member.offset_data + 16, member.offset_data + member.size):
        data[i] = 0  # keep the PNG signature, destroy the chunks
    shard.write_bytes(bytes(data))
    return member.name.split(".")[0]


def test_corrupt_images_and_shards_are_counted_skipped_and_reported(tmp_path, capsys):
    src = make_demo(tmp_path / "A", classes=3, per_class=3, shard_size=3, size=32)
    shards = list_shards(src)
    bad_key = _corrupt_first_png(shards[0])
    truncated = shards[1]
    truncated.write_bytes(truncated.read_bytes()[:700])  # inside the first member
    lost = set(json.loads(truncated.with_suffix(".idx.json").read_text())["keys"])
    out = tmp_path / "F"
    with pytest.warns(UserWarning, match="skipped a corrupt sample or shard") as warned:
        rc = main(["--in", str(src), "--out", str(out), "--filter-rule", "topk", "--keep-per-class", "3", *TINY])
    assert rc == 0
    assert {type(w.message) for w in warned} == {UserWarning}
    assert "unreadable sample(s) skipped" in capsys.readouterr().err
    rows = {r["key"]: r for r in _scores(out)}
    assert len(rows) == 9
    bad = {k for k, r in rows.items() if r["error"]}
    assert bad == {bad_key} | lost
    assert all(rows[k]["confidence"] is None and not rows[k]["kept"] for k in bad)
    report = json.loads((_report(out) / "report.json").read_text())
    assert report["totals"]["unreadable"] == len(bad)
    assert report["totals"]["kept"] == 9 - len(bad)
    assert {u["key"] for u in report["unreadable"]} == bad
    assert verify_dataset(out).ok


def test_templates_file_and_threshold_rule(demo_dir, tmp_path):
    templates = tmp_path / "t.txt"
    templates.write_text("# mine\na picture of {}\n")
    out = tmp_path / "F"
    assert (
        main(
            [
                "--in",
                str(demo_dir),
                "--out",
                str(out),
                "--templates",
                str(templates),
                "--filter-rule",
                "threshold",
                "--threshold",
                "0",
                "--no-report",
                *TINY,
            ]
        )
        == 0
    )
    info = read_dataset_json(out)
    assert info.config["filter"]["templates"] == ["a picture of {}"]
    assert all(r["kept"] for r in _scores(out))
    bad = tmp_path / "bad.txt"
    bad.write_text("no placeholder\n")
    assert main(["--in", str(demo_dir), "--out", str(tmp_path / "G"), "--templates", str(bad), *TINY]) == 2
    shutil.rmtree(out)


def test_templates_follow_the_data_set_the_shards_were_made_for(tmp_path):
    import synthdata.prompts as prompts
    from synthdata.shards import DatasetInfo, write_dataset_json
    from synthdata.tools.filter import build_command, resolve_text

    src = make_demo(tmp_path / "A", classes=2, per_class=1, size=16)
    args = build_command().parser.parse_args(["--in", str(src), "--out", str(tmp_path / "F")])
    names, templates, origin = resolve_text(args)[:3]
    assert names == read_dataset_json(src).classes and "dataset.json" in origin
    assert templates == list(DEFAULT_TEMPLATES)  # "demo" is no built-in data set
    write_dataset_json(src, DatasetInfo(classes=names, name="eurosat"))
    _, templates, origin = resolve_text(args)[:3]
    assert templates == list(prompts.get_dataset("eurosat").templates) and "eurosat" in origin
    # a run named after its --out folder, but holding exactly EuroSAT's classes, still gets its templates
    eurosat = list(prompts.get_dataset("eurosat").classnames)
    write_dataset_json(src, DatasetInfo(classes=eurosat, name="gen"))
    names, templates, origin = resolve_text(args)[:3]
    assert names == eurosat and templates == list(prompts.get_dataset("eurosat").templates)
    assert "the classes of eurosat" in origin
    listed = tmp_path / "classes.txt"
    listed.write_text("\n".join(eurosat) + "\n")
    args = build_command().parser.parse_args(["--in", str(src), "--out", str(tmp_path / "F"), "--classes", str(listed)])
    assert resolve_text(args)[1] == list(prompts.get_dataset("eurosat").templates)


def test_recipe_paper_scores_with_the_official_filter_text(tmp_path, monkeypatch):
    """--recipe paper on a built-in data set: one prompt a class, as the official filter writes it."""
    import numpy as np

    import synthdata.prompts as prompts
    from synthdata.filter import _scoring
    from synthdata.shards import DatasetInfo, Sample, ShardWriter, write_dataset_json

    names = list(prompts.get_dataset("eurosat").classnames)
    src = tmp_path / "A"
    with ShardWriter(src, prefix="gen", max_count=5) as writer:
        for c, name in enumerate(names):
            image = np.random.default_rng(c).integers(0, 256, (16, 16, 3), dtype=np.uint8)
            writer.write(Sample(f"k{c:03d}", image, c, {"class_name": name}))
    write_dataset_json(src, DatasetInfo(classes=names, name="eurosat"))
    seen = {}
    real = _scoring.zeroshot_weights

    def spy(bundle, classnames, templates, **kw):
        seen["text"] = [t.format(c) for c in classnames for t in templates]
        return real(bundle, classnames, templates, **kw)

    monkeypatch.setattr(_scoring, "zeroshot_weights", spy)
    out = tmp_path / "F"
    base = ["--in", str(src), "--out", str(out), "--device", "cpu", "--workers", "0", "--quiet"]
    assert main([*base, "--smoke", "--clip-model", "synthdata-tiny-rn"]) == 0
    assert len(seen["text"]) == len(names) * len(prompts.get_dataset("eurosat").templates)  # the ensemble
    assert main([*base, "--recipe", "paper", "--clip-model", "synthdata-tiny-rn", "--clip-pretrained", "none",
                 "--fresh"]) == 0
    head, templates = prompts.filter_text("eurosat", "paper")
    assert seen["text"] == [templates[0].format(h) for h in head] and len(templates) == 1
    assert seen["text"][0] == "a centered satellite photo of a Annual Crop Land."
    settings = json.loads((_report(out) / "report.json").read_text())["settings"]
    assert settings["head_names"] == head and verify_dataset(out).ok


def test_a_shard_pattern_filters_only_the_shards_it_names(demo_dir, tiny, tmp_path):
    from synthdata.filter import FilterConfig, filter_shards
    from synthdata.shards import ShardDataset

    first = list_shards(demo_dir)[0]  # one shard of the three, named by its path
    named = set(ShardDataset.open(demo_dir).shard(first.name).keys)
    cfg = FilterConfig(device="cpu", num_workers=0, rule="top1", report=False)
    classes = read_dataset_json(demo_dir).classes
    result = filter_shards(str(first), tmp_path / "F", classes, DEFAULT_TEMPLATES[:2], cfg, bundle=tiny)
    assert result.scored == len(named) == 4
    assert {r["key"] for r in _scores(tmp_path / "F")} == named
    assert {s.key for s in iter_samples(tmp_path / "F")} <= named


def test_the_input_is_listed_and_read_once(demo_dir, tiny, tmp_path, monkeypatch):
    from synthdata.filter import FilterConfig, _scoring, filter_shards
    from synthdata.shards import ShardDataset

    opened, reads = [], []
    real_open, real_read = ShardDataset.open.__func__, _scoring.read_dataset_json

    def counted_open(cls, location, **kwargs):
        opened.append(str(location))
        return real_open(cls, location, **kwargs)

    monkeypatch.setattr(ShardDataset, "open", classmethod(counted_open))
    monkeypatch.setattr(_scoring, "read_dataset_json", lambda d: reads.append(str(d)) or real_read(d))
    cfg = FilterConfig(device="cpu", num_workers=0, report=False)
    classes = read_dataset_json(demo_dir).classes
    filter_shards(demo_dir, tmp_path / "F", classes, DEFAULT_TEMPLATES[:2], cfg, bundle=tiny)
    assert opened.count(str(demo_dir)) == 1  # listed and its sidecars read once, not again to score
    assert reads == []  # its dataset.json came with the dataset
