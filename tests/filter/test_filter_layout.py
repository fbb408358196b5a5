"""The filter output's file names: importable without the model code, and the names a run really writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import synthdata.filter as filt
from synthdata.filter import layout


def test_layout_imports_without_torch_or_open_clip():
    code = (
        "import sys; import synthdata.filter.layout as l; from synthdata.filter import SCORES_FILE; "
        "print(SCORES_FILE, 'torch' in sys.modules, 'open_clip' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["scores.jsonl", "False", "False"]


def test_package_names_load_on_first_use():
    assert filt.REPORT_PNGS == layout.REPORT_PNGS
    assert callable(filt.filter_shards) and "filter_shards" in dir(filt)
    assert filt._job.SCORES_FILE == layout.SCORES_FILE  # submodules reachable as attributes, as before


def test_a_run_writes_the_layout_names(demo_dir, tiny, tmp_path):
    from synthdata.filter import FilterConfig, filter_shards
    from synthdata.shards import read_dataset_json

    out = tmp_path / "F"
    classes = read_dataset_json(demo_dir).classes
    cfg = FilterConfig(per_class=2, num_workers=0, sheet_per_class=2)
    result = filter_shards(demo_dir, out, classes, ["a photo of a {}."], cfg, bundle=tiny)
    report = Path(layout.report_location(out))
    assert (report / layout.SCORES_FILE).is_file() and (report / layout.REPORT_FILE).is_file()
    assert (report / layout.CACHE_DIR).is_dir()
    pngs = sorted(p.name for p in report.glob("*.png"))
    assert pngs == sorted(layout.REPORT_PNGS)
    # the shard directory holds only data: shards, dataset.json and the files timm, wids and HF read
    assert {p.suffix for p in out.iterdir()} <= {".tar", ".json", ".md"}
    assert not [p for p in out.iterdir() if p.name.endswith((".png", ".jsonl"))]
    files = json.loads((report / layout.REPORT_FILE).read_text("utf-8"))["files"]
    assert {n.removesuffix(".png") for n in layout.REPORT_PNGS} | {"scores"} == set(files)
    assert result.shards >= 1 and all(p.name.startswith(f"{layout.SHARD_PREFIX}-") for p in out.glob("*.tar"))
