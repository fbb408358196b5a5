import json

import pytest

from synthdata.shards import DatasetInfo, DatasetInfoError, read_dataset_json, write_dataset_json


def test_round_trip(tmp_path):
    write_dataset_json(tmp_path, DatasetInfo(classes=["cat", "dog"], name="pets", config={"seed": 1}))
    info = read_dataset_json(tmp_path)
    assert info.classes == ["cat", "dog"] and info.config == {"seed": 1} and info.schema_version == 1
    assert info.created  # stamped on write
    assert not list(tmp_path.glob(".*"))  # no temp files left


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ({"schema_version": 99, "classes": ["a"]}, "newer than this synthdata"),
        ({"schema_version": "1", "classes": ["a"]}, "positive integer"),
        ({"schema_version": 1, "classes": []}, "non-empty list"),
        ({"schema_version": 1, "classes": ["a", "a"]}, "duplicate class names"),
        ({"schema_version": 1, "classes": ["a", ""]}, "non-empty strings"),
        ({"schema_version": 1, "classes": ["a"], "config": []}, "'config' must be an object"),
        ([1, 2], "JSON object"),
    ],
)
def test_schema_errors(tmp_path, obj, match):
    (tmp_path / "dataset.json").write_text(json.dumps(obj))
    with pytest.raises(DatasetInfoError, match=match):
        read_dataset_json(tmp_path)


def test_missing_and_invalid(tmp_path):
    with pytest.raises(DatasetInfoError, match="is missing"):
        read_dataset_json(tmp_path)
    (tmp_path / "dataset.json").write_text("{oops")
    with pytest.raises(DatasetInfoError, match="not valid JSON"):
        read_dataset_json(tmp_path)
    with pytest.raises(DatasetInfoError, match="not JSON-serialisable"):
        write_dataset_json(tmp_path / "x", DatasetInfo(classes=["a"], config={"f": object()}))
    with pytest.raises(DatasetInfoError, match="duplicate"):
        write_dataset_json(tmp_path / "y", DatasetInfo(classes=["a", "a"]))
