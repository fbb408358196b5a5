"""synth-generate --out s3://... on a local S3-compatible server (moto): ranks, crashes and a SIGKILL resume to
the same objects, byte for byte, as a local run of the same plan; leftovers of killed uploads are redone;
read-only and unknown URLs are refused in one line before anything is made."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from synthdata.diffusion.runner import PLAN_FILE, SUMMARY_JSON, GenerateConfig, run_generation
from synthdata.shards import DATASET_JSON, INTEROP_FILES, ShardError, WorkSplit, storage, verify_dataset
from synthdata.tools.generate import main

from ._helpers import FakePipeline, write_prompts_file
from .test_runner import _prompts

pytest.importorskip("s3fs", reason="needs s3fs (a dev dependency)")

#: Fields of dataset.json and the summaries that record when and where a run happened, not what it made.
TIMESTAMPS = {"created", "started", "finished"}


def _objects(location: str) -> dict[str, bytes]:
    """Every file directly in a local folder or below a URL prefix: name -> bytes."""
    names = storage.listdir(location)
    return {n: storage.read_bytes(storage.join(location, n)) for n in names}


def _without(obj, drop):
    if isinstance(obj, dict):
        return {k: _without(v, drop) for k, v in obj.items() if k not in drop}
    if isinstance(obj, list):
        return [_without(v, drop) for v in obj]
    return obj


def _same_objects(remote: dict[str, bytes], local: dict[str, bytes], drop=TIMESTAMPS) -> None:
    """The same names; shards, sidecars, the plan file and the interop files byte for byte; dataset.json and
    the summaries equal once ``drop`` fields are removed."""
    assert sorted(remote) == sorted(local)
    for name in local:
        if name == DATASET_JSON or name.startswith("summary"):
            a, b = json.loads(remote[name]), json.loads(local[name])
            assert _without(a, drop) == _without(b, drop), name
        else:
            assert hashlib.sha256(remote[name]).hexdigest() == hashlib.sha256(local[name]).hexdigest(), name


SINGLE = WorkSplit(0, 1)


def _run(out, split=SINGLE, pipe=None, **kw):
    cfg = GenerateConfig(out=str(out), name="gen", **({"images_per_prompt": 2, "shard_size": 5, "batch_size": 3} | kw))
    return run_generation(cfg, _prompts(), pipeline=pipe or FakePipeline(), split=split, progress=False)


@pytest.fixture(autouse=True)
def staging(monkeypatch, tmp_path):
    """No launcher ids; shards bound for S3 are built in a folder of the test's (subprocesses inherit it)."""
    for var in ("SLURM_JOB_ID", "SLURM_STEP_ID", "TORCHELASTIC_RUN_ID", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SYNTHDATA_STAGING", str(tmp_path / "staging"))
    return tmp_path / "staging"


# Summary fields that say where the run wrote and how fast it went; with a resume, also what it redid.
TIMINGS = {
    "out", "seconds", "images_per_second", "device_seconds_per_image", "wall_seconds", "device_seconds",
    "images_per_second_per_device",
}  # fmt: skip
RESUMED = TIMINGS | {"images", "images_resumed", "shards_written", "shards_resumed"}


def test_two_ranks_to_s3_equal_a_local_run(s3_server, tmp_path, staging):
    for rank in (1, 0):  # rank 1 first: the last rank to finish writes dataset.json
        _run(tmp_path / "local", WorkSplit(rank, 2))
    url = s3_server.url("runs/gen")
    s1 = _run(url, WorkSplit(1, 2))
    assert not s1.dataset_complete and DATASET_JSON not in s3_server.listing(url)
    s0 = _run(url, WorkSplit(0, 2))
    assert s0.dataset_complete and s0.run_summary == storage.join(url, SUMMARY_JSON) and s0.out == url
    remote, local = _objects(url), _objects(str(tmp_path / "local"))
    assert {PLAN_FILE, DATASET_JSON, SUMMARY_JSON, *INTEROP_FILES} <= set(remote)
    _same_objects(remote, local, TIMESTAMPS | TIMINGS)
    # only the timestamps differ in dataset.json; the summaries also differ in their timings and location
    _same_objects({DATASET_JSON: remote[DATASET_JSON]}, {DATASET_JSON: local[DATASET_JSON]})
    report = verify_dataset(url)
    assert report.ok and report.samples == 12, report.problems
    assert staging.is_dir() and not list(staging.iterdir())  # each shard's local copy is gone once uploaded


def test_a_crash_and_the_leftovers_of_killed_uploads_are_redone(s3_server, tmp_path):
    _run(tmp_path / "ref")
    url = s3_server.url("crash")
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(url, pipe=FakePipeline(fail_after=3))  # dies in the second shard
    assert s3_server.listing(url) == sorted([PLAN_FILE, "gen-000-000000.idx.json", "gen-000-000000.tar"])
    # what a kill leaves on a store: a tar uploaded without its sidecar; and a shard of another plan whose
    # sidecar matches its tar's size (complete by the listing) but holds other keys than planned
    storage.write_bytes(storage.join(url, "gen-000-000001.tar"), b"half an upload")
    storage.write_bytes(storage.join(url, "gen-000-000002.tar"), storage.read_bytes(f"{url}/gen-000-000000.tar"))
    side = json.loads(storage.read_bytes(storage.join(url, "gen-000-000000.idx.json")))
    storage.write_json(storage.join(url, "gen-000-000002.idx.json"), side | {"shard": "gen-000-000002.tar"})
    s = _run(url)
    assert (s.shards_resumed, s.shards_written, s.images_resumed, s.dataset_complete) == (1, 2, 5, True)
    _same_objects(_objects(url), _objects(str(tmp_path / "ref")), TIMESTAMPS | RESUMED)
    # a rerun has nothing to do, and needs no model call
    assert _run(url, pipe=FakePipeline(fail_after=0)).images == 0


def test_an_upload_the_store_changed_fails_and_leaves_no_shard(s3_server, monkeypatch):
    url = s3_server.url("md5")
    with monkeypatch.context() as m, pytest.raises(ShardError, match=r"stored MD5 \w+ differs"):
        m.setattr(storage, "_md5_file", lambda path: "0" * 32)  # as if the bytes changed on the way
        _run(url)
    assert s3_server.listing(url) == [PLAN_FILE]  # neither the tar nor its sidecar is there
    assert _run(url).dataset_complete  # a rerun redoes it


def test_more_then_fewer_images_on_s3(s3_server):
    url = s3_server.url("grow")
    _run(url)
    before = _objects(url)
    s = _run(url, images_per_prompt=3)  # 18 items: shards 0-1 kept, 2 redone (new keys), 3 new
    assert (s.shards_resumed, s.shards_written) == (2, 2)
    after = _objects(url)
    assert all(after[n] == before[n] for n in ("gen-000-000000.tar", "gen-000-000001.tar"))
    assert json.loads(after["_info.json"])["splits"]["train"]["num_samples"] == 18
    _run(url)  # back to 12: the extra shard goes when the dataset is described again
    assert "gen-000-000003.tar" not in s3_server.listing(url) and verify_dataset(url).samples == 12
    with pytest.raises(ValueError, match=r"other settings \(guidance: 3.0 -> 5.0\)"):
        _run(url, guidance=5.0)


def test_urls_that_cannot_hold_shards_are_refused_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = write_prompts_file(tmp_path / "p.jsonl")
    for out, match in (("http://127.0.0.1:9/gen", "http:// is read-only"), ("ftp://host/gen", "unsupported URL")):
        with pytest.raises(SystemExit) as exc:
            main(["--prompts", str(p), "--out", out, "--smoke"])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("synth-generate: error: ") and "\n" not in err and match in err, err
        with pytest.raises(ShardError, match=match):
            _run(out)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["p.jsonl"]  # no folder named http: or ftp:


# ------------------------------------------------------------------------------------------ smoke, SIGKILL
ARGS = ["--images-per-prompt", "2", "--size", "64", "--smoke", "--quiet", "--shard-size", "2", "--name", "gen"]


def _cli(prompts, out):
    return [sys.executable, "-m", "synthdata.tools.generate", "--prompts", str(prompts), "--out", out, *ARGS]


def _ranks(prompts, out, kill_rank_1_after=None):
    """Both ranks of 2 as separate processes (RANK/WORLD_SIZE); with ``kill_rank_1_after`` (a callable
    saying whether rank 1 has got far enough), rank 1 is SIGKILLed then. Returns the return codes."""
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "WORLD_SIZE": "2"}
    procs = [
        subprocess.Popen(_cli(prompts, out), env=env | {"RANK": str(r)}, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
        for r in (0, 1)
    ]  # fmt: skip
    if kill_rank_1_after is not None:
        deadline = time.time() + 240
        while not kill_rank_1_after() and time.time() < deadline and procs[1].poll() is None:
            time.sleep(0.02)
        os.kill(procs[1].pid, signal.SIGKILL)
    logs = [p.communicate(timeout=300)[0] for p in procs]
    return [p.returncode for p in procs], logs


@pytest.mark.slow
def test_smoke_on_two_ranks_to_s3_killed_and_rerun_equals_a_local_run(s3_server, tmp_path):
    prompts = write_prompts_file(tmp_path / "p.jsonl")  # 6 prompts x 2: 12 images in 6 shards, 3 per rank
    codes, logs = _ranks(prompts, str(tmp_path / "local"))
    assert codes == [0, 0], logs
    url = s3_server.url("smoke/gen")
    sidecars_of_rank_1 = ("gen-000-000001.idx.json", "gen-000-000003.idx.json", "gen-000-000005.idx.json")

    def rank_1_wrote_one() -> bool:
        try:
            return any(n in sidecars_of_rank_1 for n in storage.listdir(url))
        except FileNotFoundError:
            return False

    codes, logs = _ranks(prompts, url, kill_rank_1_after=rank_1_wrote_one)
    assert codes == [0, -signal.SIGKILL], logs
    listing = s3_server.listing(url)
    assert 1 <= sum(n in listing for n in sidecars_of_rank_1) < 3 and DATASET_JSON not in listing
    assert not verify_dataset(url).ok  # an interrupted prefix never reads as a complete dataset

    codes, logs = _ranks(prompts, url)
    assert codes == [0, 0], logs
    assert "0 images in" in logs[0] and "0 shards written, 3 resumed" in logs[0]  # rank 0 had finished
    assert "0 shards written" not in logs[1] and "3 resumed" not in logs[1]  # rank 1 redid what it had not
    remote = _objects(url)
    # which of two concurrent ranks finishes last (and so reads the dataset as complete) is a race
    _same_objects(remote, _objects(str(tmp_path / "local")), TIMESTAMPS | RESUMED | {"dataset_complete"})
    assert json.loads(remote[SUMMARY_JSON])["dataset_complete"] and verify_dataset(url).ok
