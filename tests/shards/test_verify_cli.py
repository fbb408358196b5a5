import json
import shutil

import pytest
from PIL import Image

from synthdata.shards import list_shards, sidecar_path, verify_dataset
from synthdata.tools.shards import main

from ._helpers import flip_byte_in_member, make_dataset


def test_acceptance_make_demo_then_verify(tmp_path, capsys):
    d = tmp_path / "d"
    assert main(["make-demo", str(d), "--num-classes", "3", "--images-per-class", "4"]) == 0
    assert main(["verify", str(d)]) == 0
    assert "12 samples: OK" in capsys.readouterr().out

    shard = list_shards(d)[0]
    flip_byte_in_member(shard)  # one byte inside an image member
    assert main(["verify", str(d)]) == 1
    out = capsys.readouterr().out
    assert f"problem: {shard.name}: checksum mismatch" in out
    assert "FAILED" in out


def test_verify_finds_each_kind_of_problem(tmp_path):
    make_dataset(tmp_path, n=12, max_count=4)
    shards = list_shards(tmp_path)
    sidecar_path(shards[0]).unlink()  # missing sidecar
    data = shards[1].read_bytes()
    shards[1].write_bytes(data[: len(data) // 2])  # truncated
    shutil.copy(shards[2], tmp_path / "t-000-000009.tar")  # duplicate keys across shards
    shutil.copy(sidecar_path(shards[2]), tmp_path / "t-000-000009.idx.json")
    side = json.loads((tmp_path / "t-000-000009.idx.json").read_text())
    side["shard"] = "t-000-000009.tar"
    (tmp_path / "t-000-000009.idx.json").write_text(json.dumps(side))
    (tmp_path / ".t-000-000010.tar.tmp-1-aa").write_bytes(b"x")
    report = verify_dataset(tmp_path)
    kinds = {(p.where, p.kind) for p in report.problems}
    assert (shards[0].name, "missing sidecar") in kinds
    assert (shards[1].name, "size mismatch") in kinds
    assert (shards[1].name, "unreadable tar") in kinds
    assert any(kind == "duplicate key" for _, kind in kinds)
    assert [w.kind for w in report.warnings] == ["stale temp file"]
    assert not report.ok


def test_verify_schema_errors(tmp_path):
    make_dataset(tmp_path, n=6, classes=3)
    (tmp_path / "dataset.json").write_text(json.dumps({"schema_version": 1, "classes": ["only one"]}))
    report = verify_dataset(tmp_path)
    assert any(p.kind == "schema error" and "outside 0..0" in p.detail for p in report.problems)
    (tmp_path / "dataset.json").unlink()
    assert any(p.where == "dataset.json" for p in verify_dataset(tmp_path).problems)


def test_verify_detects_undecodable_image_with_matching_checksum(tmp_path):
    make_dataset(tmp_path, n=2, max_count=4)
    shard = list_shards(tmp_path)[0]
    flip_byte_in_member(shard)
    # make the sidecar agree with the damaged bytes: only decoding can catch it now
    from synthdata.shards.atomic import sha256_file

    side = json.loads(sidecar_path(shard).read_text())
    side["sha256"] = sha256_file(shard)
    sidecar_path(shard).write_text(json.dumps(side))
    report = verify_dataset(tmp_path)
    assert [p.kind for p in report.problems] == ["undecodable image"]


def test_stats_and_show(tmp_path, capsys):
    d = tmp_path / "d"
    main(["make-demo", str(d), "--num-classes", "3", "--images-per-class", "5", "--size", "32"])
    capsys.readouterr()
    assert main(["stats", str(d), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["samples"] == 15 and stats["image_sizes"] == {"32x32": 15}
    assert {v["count"] for v in stats["per_class"].values()} == {5}
    assert stats["per_class"]["1"]["name"] == "orange columns"
    assert main(["stats", str(d)]) == 0
    assert "orange columns" in capsys.readouterr().out

    out = tmp_path / "sheet.png"
    assert main(["show", str(d), "--out", str(out), "--thumbs-per-class", "4"]) == 0
    with Image.open(out) as sheet:
        assert sheet.height >= 3 * 64 and sheet.width > 4 * 64


def test_make_demo_imagefolder(tmp_path):
    assert main(["make-demo", str(tmp_path), "--num-classes", "3", "--images-per-class", "2", "--as-imagefolder"]) == 0
    dirs = sorted(p.name for p in tmp_path.iterdir())
    assert dirs == ["000_red_stripes", "001_orange_columns", "002_yellow_diagonals"]
    assert len(list((tmp_path / dirs[0]).glob("*.png"))) == 2


def test_cli_errors_are_one_line(tmp_path, capsys):
    blocker = tmp_path / "f"
    blocker.write_text("x")
    assert main(["make-demo", str(blocker), "--num-classes", "2", "--images-per-class", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("synth-shards: error:") and err.count("\n") == 1
    assert main(["verify", str(tmp_path / "missing")]) == 1
    with pytest.raises(SystemExit):
        main(["make-demo", str(tmp_path)])  # argparse: required options missing


def test_demo_classes_are_distinct_and_learnable(tmp_path):
    """Mean colour alone separates demo classes: a nearest-centroid rule gets most right."""
    import numpy as np

    from synthdata.shards import draw_demo_image

    feats, labels = [], []
    for c in range(6):
        for n in range(6):
            img = draw_demo_image(c, np.random.default_rng(100 * c + n), 32).astype(float)
            feats.append(np.concatenate([img.mean((0, 1)), img.std((0, 1))]))
            labels.append(c)
    feats, labels = np.array(feats), np.array(labels)
    centroids = np.stack([feats[labels == c][:3].mean(0) for c in range(6)])
    test = np.array([i for i in range(len(labels)) if i % 6 >= 3])
    pred = np.argmin(((feats[test, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (pred == labels[test]).mean() >= 0.9


def test_stats_bytes_count_the_tars_there(tmp_path):
    from synthdata.shards import dataset_stats, list_shards

    d = tmp_path / "d"
    main(["make-demo", str(d), "--num-classes", "3", "--images-per-class", "5", "--shard-size", "4"])
    shards = list_shards(d)
    assert dataset_stats(d).bytes == sum(p.stat().st_size for p in shards)
    shards[0].unlink()  # its sidecar stays: listed, but there is no tar to count
    stats = dataset_stats(d)
    assert stats.bytes == sum(p.stat().st_size for p in shards[1:]) and stats.skipped_shards == [shards[0].name]
