"""run_tuning on shard directory URLs (local HTTP and S3 servers): the same record numbers and heads as
the local run of the same shards, feature-cache entries shared between the local and remote copies,
DataLoader workers that open remote shards themselves, and URLs that are not shard directories refused
in one line before ``out`` exists."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from synthdata.clip import load_clip
from synthdata.shards import ShardDataset, list_shards, make_demo, sidecar_path
from synthdata.tools.tune import main
from synthdata.tune import DataError, FeatureCache, encode_images, load_image_set
from synthdata.tune.data import _usable_cpus, image_loader, sidecar_digests

from .test_tune_run import CLASSES, MODEL, _run

# Every number of the record that the data decides (timings, paths and run ids aside).
NUMBERS = (
    "zeroshot_top1",
    "top1",
    "mean_per_class",
    "per_class_accuracy",
    "zeroshot_per_class_accuracy",
    "confusion",
    "wise_ft",
    "wise_ft_best",
    "steps",
    "final_train_loss",
)


@pytest.fixture(scope="module")
def shards(demo, tmp_path_factory) -> dict[str, Path]:
    """Local shard directories: ``train`` (the demo's, 4 x 16), ``eval`` (4 x 16, another seed) and
    ``real`` (4 x 6, a few-shot pool)."""
    root = tmp_path_factory.mktemp("tune-remote")
    return {
        "train": demo["train"],
        "eval": make_demo(root / "eval", classes=4, per_class=16, seed=2),
        "real": make_demo(root / "real", classes=4, per_class=6, seed=3),
    }


def _serve(shards: dict[str, Path], http_server) -> dict[str, str]:
    for name, local in shards.items():
        shutil.copytree(local, http_server.root / name)
    return {name: http_server.url(name) for name in shards}


def _upload(shards: dict[str, Path], s3_server) -> dict[str, str]:
    urls = {name: s3_server.url(f"runs/{name}") for name in shards}
    for name, local in shards.items():
        s3_server.upload(local, urls[name])
    return urls


def _assert_same_run(remote: dict, local: dict, remote_out: Path, local_out: Path) -> None:
    assert {k: remote[k] for k in NUMBERS} == {k: local[k] for k in NUMBERS}
    assert remote["run_id"] == local["run_id"]  # the same data, so a checkpoint of one resumes the other
    for name in ("head.safetensors", "zeroshot_head.safetensors"):
        a, b = load_file(remote_out / name), load_file(local_out / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    for role in ("train", "eval"):
        assert remote["data"][role]["fingerprint"] == local["data"][role]["fingerprint"]


def _entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.glob("*.safetensors"))


def test_tune_from_http_equals_the_local_run(shards, http_server, tmp_path):
    urls = _serve(shards, http_server)
    local = _run(shards, tmp_path / "local", cache_dir=tmp_path / "cache-local")
    remote = _run(urls, tmp_path / "http", cache_dir=tmp_path / "cache-http")
    assert remote["feature_cache"] == {"eval": "miss", "train": "miss"}  # features computed from HTTP
    _assert_same_run(remote, local, tmp_path / "http", tmp_path / "local")
    assert remote["data"]["train"]["sources"] == [urls["train"]] and remote["data"]["eval"]["source"] == urls["eval"]
    assert remote["data"]["eval"]["kind"] == "shards" and local["top1"] > local["zeroshot_top1"]
    # The cache key is derived from the sidecars' content: local and remote copies share entries.
    assert _entries(tmp_path / "cache-http") == _entries(tmp_path / "cache-local")
    again = _run(urls, tmp_path / "http2", cache_dir=tmp_path / "cache-local")
    assert again["feature_cache"] == {"eval": "hit", "train": "hit"} and again["top1"] == local["top1"]


def test_few_shot_tuning_from_s3_with_two_workers_equals_the_local_run(shards, s3_server, tmp_path):
    """Every input on S3 (train, eval, few-shot pool); images decoded in 2 DataLoader processes, each of
    which opens its shards on the S3 server itself. (Features from 2 workers equal those from 0 only to
    float rounding, as batches hold other images, so the local run decodes with 2 workers too.)"""
    urls = _upload(shards, s3_server)
    few = {"shots": 3, "real_batch_size": 4, "workers": 2}
    local = _run(shards, tmp_path / "local", cache_dir=tmp_path / "cache-local", **few)
    remote = _run(urls, tmp_path / "s3", cache_dir=tmp_path / "cache-s3", **few)
    assert remote["feature_cache"] == {"eval": "miss", "train": "miss", "real": "miss"}
    assert remote["setting"] == local["setting"] == "few-shot"
    _assert_same_run(remote, local, tmp_path / "s3", tmp_path / "local")
    assert remote["data"]["few_shot"] == {**local["data"]["few_shot"], "source": urls["real"]}
    assert _entries(tmp_path / "cache-s3") == _entries(tmp_path / "cache-local")


def test_workers_decode_s3_shards_in_index_order(shards, s3_server):
    """encode_images over S3 with 2 worker processes gives the local features, rows in index order."""
    urls = _upload({"train": shards["train"]}, s3_server)
    bundle = load_clip(MODEL, "none")
    remote, local = load_image_set(urls["train"], 4), load_image_set(shards["train"], 4)
    assert len(remote.work_units(None)) == 4  # 4 shards: both workers get some
    assert image_loader(remote, None, None, batch_size=8, workers=2).num_workers == min(2, _usable_cpus())
    for subset in (None, [0, 5, 17, 40, 63]):
        f2, y2 = encode_images(bundle, remote, subset, batch_size=8, workers=2)
        f0, y0 = encode_images(bundle, local, subset, batch_size=8, workers=0)
        assert torch.equal(y0, y2) and torch.allclose(f0, f2, atol=1e-6)
        if subset is None:  # batches of 8 within 16-image shards: the same batches, the same bits
            assert torch.equal(f0, f2)
    assert FeatureCache(bundle, None).key(remote) == FeatureCache(bundle, None).key(local)


def test_the_local_fingerprint_is_the_sidecar_bytes_digest(shards, s3_server, tmp_path):
    """The fingerprint keeps its definition (so existing feature caches and checkpoints still match):
    sha256 over "shards", then each shard's name and its sidecar bytes' sha256; an S3 copy agrees."""
    digest = hashlib.sha256(b"shards\n")
    for d in (shards["train"], shards["real"]):
        for shard in list_shards(d):
            side = hashlib.sha256(sidecar_path(shard).read_bytes()).hexdigest()
            digest.update(f"{shard.name}\t{side}\n".encode())
    local = load_image_set([shards["train"], shards["real"]], 4)
    assert local.fingerprint() == digest.hexdigest()
    urls = _upload({"train": shards["train"], "real": shards["real"]}, s3_server)
    assert load_image_set([urls["train"], urls["real"]], 4).fingerprint() == digest.hexdigest()
    # A sidecar rewritten after the index was read is caught, not hashed as if it were the indexed one.
    copy = shutil.copytree(shards["real"], tmp_path / "real")
    dataset = ShardDataset.open(copy)
    side = sidecar_path(list_shards(copy)[0])
    obj = json.loads(side.read_text())
    side.write_text(json.dumps({**obj, "classes": [(c + 1) % 4 for c in obj["classes"]]}))
    with pytest.raises(DataError, match="changed while it was being read"):
        sidecar_digests(dataset)
    side.unlink()  # and one removed since is one line too
    with pytest.raises(DataError, match="unreadable sidecar"):
        sidecar_digests(dataset)


@pytest.mark.parametrize("option", ["--in", "--eval", "--few-shot"])
def test_a_url_imagefolder_is_refused_in_one_line_before_out(option, demo, shards, http_server, tmp_path):
    shutil.copytree(demo["eval"], http_server.root / "folder")  # an ImageFolder, served over HTTP
    (http_server.root / "empty").mkdir()
    (http_server.root / "empty" / "README.txt").write_text("no shards here\n")
    role = {"--in": "train", "--eval": "eval", "--few-shot": "real"}[option]
    cases = {name: "no synthdata shards there" for name in ("folder", "empty")}
    cases["missing"] = "no such shard directory"
    for name, expected in cases.items():
        bad = http_server.url(name)
        out = tmp_path / "new" / "T"
        with pytest.raises(DataError) as info:
            _run({**shards, role: bad}, out, cache_dir=tmp_path / "cache", shots=2 if role == "real" else None)
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"{option} {bad}: {expected}"), message
        assert name == "missing" or "an ImageFolder is read from a local directory only" in message
        assert not (tmp_path / "new").exists()


def test_a_url_that_holds_no_shards_is_one_cli_line(shards, s3_server, tmp_path, capsys):
    import fsspec

    empty = s3_server.url("nothing")
    fsspec.filesystem("s3").pipe_file(f"{empty.removeprefix('s3://')}/notes.txt", b"not shards")
    names = tmp_path / "classes.txt"
    names.write_text("\n".join(CLASSES) + "\n")
    out = tmp_path / "new" / "T"
    argv = ["--in", empty, "--eval", str(shards["eval"]), "--classes", str(names), "--out", str(out)]
    argv += ["--clip-model", MODEL, "--clip-pretrained", "none", "--epochs", "1", "--workers", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"synth-tune: error: --in {empty}: no synthdata shards"), err
    assert not (tmp_path / "new").exists()


def test_end_to_end_finetuning_streams_http_shards_like_local_ones(shards, http_server, tmp_path):
    urls = _serve({"train": shards["train"], "eval": shards["eval"]}, http_server)
    tune = {"finetune": True, "epochs": 1, "batch_size": 32, "lr": 1e-3, "wise_alphas": ()}
    local = _run(shards, tmp_path / "local", cache_dir=tmp_path / "cache", **tune)
    remote = _run(urls, tmp_path / "http", cache_dir=tmp_path / "cache", **tune)
    assert remote["mode"] == "finetune" and remote["steps"] == 2
    _assert_same_run(remote, local, tmp_path / "http", tmp_path / "local")
    a, b = load_file(tmp_path / "http" / "encoder.safetensors"), load_file(tmp_path / "local" / "encoder.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
