"""The runner with a fast stand-in pipeline: ranks, resume, crash, extension, metadata, Real Guidance."""

import json

import numpy as np
import pytest

from synthdata.diffusion.runner import PLAN_FILE, GenerateConfig, GenerateError, Prompt, run_generation
from synthdata.shards import DATASET_JSON, WorkSplit, read_dataset_json, verify_dataset

from ._helpers import CLASSES, FakePipeline, make_imagefolder, prompt_records, read_dir


def _prompts(n_per_class=2):
    return [
        Prompt(r["id"], r["class_index"], r["class_name"], r["prompt"]) for r in prompt_records(n_per_class)
    ]


SINGLE = WorkSplit(0, 1)


def _run(out, pipe=None, split=SINGLE, prompts=None, **kw):
    cfg = GenerateConfig(out=str(out), **({"images_per_prompt": 2, "shard_size": 5, "batch_size": 3} | kw))
    prompts = _prompts() if prompts is None else prompts
    return run_generation(cfg, prompts, pipeline=pipe or FakePipeline(), split=split, progress=False)


def _sidecars(d):
    return {p.name: json.loads(p.read_text())["sha256"] for p in sorted(d.glob("*.idx.json"))}


def test_single_run_writes_a_verified_dataset(tmp_path):
    pipe = FakePipeline()
    s = _run(tmp_path / "a", pipe)
    assert (s.images, s.shards_written, s.dataset_complete) == (12, 3, True)
    report = verify_dataset(tmp_path / "a")
    assert report.ok and report.samples == 12, report.problems
    # batches mix prompts of different classes (the plan's order is a seeded permutation of each replicate)
    names = {w for p in pipe.calls[0] for w in p.replace(",", "").split()} & set(CLASSES)
    assert len(set(pipe.calls[0])) == 3 and len(names) >= 2
    info = read_dataset_json(tmp_path / "a")
    assert info.classes == CLASSES and info.producer == "synth-generate"
    assert info.config["items"] == 12 and info.config["fingerprint"]["models"] == {"base": "state:fake-base"}
    assert info.config["settings"]["guidance"] == 3.0 and info.config["pipeline"]["fake"]
    meta = read_dir(tmp_path / "a")["c0001-00000-00001"][2]
    assert meta["class_name"] == "dog" and meta["replicate"] == 1 and meta["prompt_id"] == "c0001-00000"
    assert meta["sampler"] == {"method": "ancestral", "respacing": "100", "steps": 100}
    assert meta["guidance_scale"] == 3.0 and meta["models"] == {"base": "state:fake-base"}
    assert meta["real_guidance"] is None and meta["upsampler"] is None


def test_ranks_and_batch_size_do_not_change_the_bytes(tmp_path):
    _run(tmp_path / "one")
    for rank in (1, 0):  # rank 1 first: only the last rank to finish writes dataset.json
        s = _run(tmp_path / "two", split=WorkSplit(rank, 2), batch_size=4)
        assert s.dataset_complete == (rank == 0)
    assert _sidecars(tmp_path / "one") == _sidecars(tmp_path / "two")
    assert (tmp_path / "two" / DATASET_JSON).exists()


def test_crash_midway_then_resume_gives_the_same_dataset(tmp_path):
    _run(tmp_path / "ref")
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(tmp_path / "c", FakePipeline(fail_after=3))  # dies in the second shard's second batch
    assert not (tmp_path / "c" / DATASET_JSON).exists()
    assert len(_sidecars(tmp_path / "c")) == 1
    pipe = FakePipeline()
    s = _run(tmp_path / "c", pipe)
    assert (s.shards_resumed, s.shards_written, s.images, s.images_resumed) == (1, 2, 7, 5)
    assert _sidecars(tmp_path / "c") == _sidecars(tmp_path / "ref")
    # a third run has nothing to do
    s = _run(tmp_path / "c", FakePipeline(fail_after=0))
    assert s.images == 0 and s.dataset_complete


def test_leftovers_of_a_killed_writer_are_redone(tmp_path):
    _run(tmp_path / "ref")
    d = tmp_path / "c"
    _run(d)
    (d / "gen-000-000001.idx.json").unlink()  # as if killed between the tar's rename and its sidecar
    (d / ".gen-000-000002.tar.tmp-999-abcd").write_bytes(b"partial")
    (d / "gen-000-000002.tar").write_bytes(b"truncated")
    (d / "gen-000-000002.idx.json").unlink()
    s = _run(d)
    assert s.shards_written == 2 and not list(d.glob(".*tmp-*"))
    assert _sidecars(d) == _sidecars(tmp_path / "ref")


def test_changed_settings_are_refused_but_more_images_extend(tmp_path):
    d = tmp_path / "d"
    _run(d)
    with pytest.raises(GenerateError, match=r"other settings \(guidance: 3.0 -> 5.0\)"):
        _run(d, guidance=5.0)
    with pytest.raises(GenerateError, match="prompts_sha256"):
        _run(d, prompts=_prompts(3))
    before = _sidecars(d)
    s = _run(d, images_per_prompt=3)  # 18 items: shards 0-1 kept, 2 redone (new keys), 3 new
    assert (s.shards_resumed, s.shards_written) == (2, 2)
    after = _sidecars(d)
    assert {k: after[k] for k in list(before)[:2]} == dict(list(before.items())[:2])
    assert read_dataset_json(d).config["items"] == 18 and verify_dataset(d).samples == 18
    s = _run(d, images_per_prompt=2)  # back to 12: the extra shard is removed when the dataset is described
    assert verify_dataset(d).samples == 12 and read_dataset_json(d).config["items"] == 12
    assert json.loads((d / PLAN_FILE).read_text())["fingerprint"]["guidance"] == 3.0


def test_a_directory_planned_in_the_old_order_is_refused(tmp_path):
    d = tmp_path / "old"
    _run(d)
    plan = json.loads((d / PLAN_FILE).read_text())
    del plan["fingerprint"]["plan_order"]  # what the runner recorded before the seeded permutation
    (d / PLAN_FILE).write_text(json.dumps(plan))
    before = _sidecars(d)
    with pytest.raises(GenerateError, match=r"other settings \(plan_order: None -> 'replicate-major, seeded"):
        _run(d)
    assert _sidecars(d) == before and (d / DATASET_JSON).exists()  # nothing regenerated or removed


def test_a_rerun_reads_dataset_json_once_at_the_start_and_once_at_the_end(tmp_path, monkeypatch):
    from synthdata.shards import storage

    d = tmp_path / "d"
    _run(d)
    reads = []
    real = storage.read_text

    def counting(location):
        reads.append(str(location))
        return real(location)

    monkeypatch.setattr(storage, "read_text", counting)
    s = _run(d)  # nothing to do: its producer and staleness checked from one read, then the finish's
    assert s.images == 0 and s.dataset_complete
    assert [r for r in reads if r.endswith(DATASET_JSON)] == [str(d / DATASET_JSON)] * 2


def test_unwritable_and_non_directory_out(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OSError, match="not a directory"):
        _run(f)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if not __import__("os").access(ro, __import__("os").W_OK):  # root ignores permissions
            with pytest.raises(OSError, match="not writable"):
                _run(ro)
    finally:
        ro.chmod(0o700)


def test_foreign_dataset_is_not_overwritten(tmp_path):
    from synthdata.shards import make_demo

    make_demo(tmp_path / "demo", classes=3, per_class=2, seed=0)
    with pytest.raises(GenerateError, match="made by"):
        _run(tmp_path / "demo")


def test_real_guidance(tmp_path):
    refs = make_imagefolder(tmp_path / "refs", CLASSES, per_class=3)
    pipe = FakePipeline()
    s = _run(
        tmp_path / "rg", pipe, real_guidance=str(refs), shots=2, images_per_prompt=1, base_respacing="50"
    )
    assert s.images == 12  # 6 prompts x 2 references x 1
    samples = read_dir(tmp_path / "rg")
    rg = samples["c0002-00001-s01-00000"][2]["real_guidance"]
    assert rg["source"] == "002_car/img1.png" and rg["shots"] == 2
    assert (rg["paper_start_step"], rg["start_step"]) == (40, 20)  # 2 shots: k=40 of 100, scaled to 50 steps
    assert all(kw["start_step"] == 20 for kw in pipe.kwargs)
    ref_img = pipe.kwargs[0]["real_guidance"][0]
    assert tuple(ref_img.shape) == (40, 40, 3)  # centre-cropped to a square
    assert read_dataset_json(tmp_path / "rg").config["real_guidance"]["start_step"] == 20
    # the reference image reaches the pipeline: same seed, different reference → different pixels
    a = samples["c0000-00000-s00-00000"][0]
    assert a.shape == (64, 64, 3) and np.any(a != samples["c0000-00000-s01-00000"][0])


@pytest.mark.parametrize(
    ("per_class", "drop", "match"),
    [
        (1, None, "has 1 images but --shots is 2"),
        (2, "001_dog", "no folder for class 1"),
        (2, "bad", "matches no class"),
    ],
)
def test_real_guidance_errors(tmp_path, per_class, drop, match):
    refs = make_imagefolder(tmp_path / "refs", CLASSES, per_class=per_class)
    if drop == "bad":
        (refs / "zebra").mkdir()
    elif drop:
        for f in (refs / drop).iterdir():
            f.unlink()
        (refs / drop).rmdir()
    with pytest.raises(GenerateError, match=match):
        _run(tmp_path / "rg", real_guidance=str(refs), shots=2)


def test_summary_reports_throughput(tmp_path):
    s = _run(tmp_path / "s")
    j = s.to_json()
    assert j["images"] == 12 and j["images_per_second"] > 0 and j["device_seconds_per_image"] > 0
    assert j["rank"] == 0 and j["world_size"] == 1 and j["dataset_complete"]
    line = s.line()
    assert "12 images in" in line and "images/s/device" in line and "device-s/image" in line
