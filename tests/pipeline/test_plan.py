"""synth-pipeline --dry-run: the plan and its FLOP-counted cost, with nothing loaded or written."""

from __future__ import annotations

import json
import subprocess
import sys

from synthdata.tools._pipeline.config import PipelineConfig
from synthdata.tools._pipeline.plan import (
    BASE_GFLOP,
    PEAK_TFLOPS,
    UPSAMPLE_GFLOP,
    generation_tflop,
    measured_images_per_s,
)
from synthdata.tools.pipeline import main


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys) -> None:
    out = tmp_path / "R"
    assert main(["--dataset", "eurosat", "--eval", str(tmp_path), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "20000 images at 256 px into 80 shard(s)" in text and "keep 8000" in text
    assert "fewshot   off" in text and "floor 2,081 GPU-s" in text
    assert not out.exists()


def test_the_plan_loads_no_torch(tmp_path) -> None:
    """Resolving the config settles no device (the runner does that), so --dry-run answers at once."""
    code = (
        "import sys; from synthdata.tools._pipeline import PipelineConfig, dry_run; "
        f"dry_run(PipelineConfig(dataset='eurosat', eval_dir={str(tmp_path)!r}), {str(tmp_path / 'R')!r}); "
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


def test_generation_cost_is_counted_from_the_forward_flops() -> None:
    cfg = PipelineConfig(dataset="cifar10", images_per_class=10).resolved()  # 256 px, 100 + fast27 steps
    per_image = 100 * 2 * BASE_GFLOP + 27 * UPSAMPLE_GFLOP
    assert abs(generation_tflop(cfg, 1000) - 1000 * per_image / 1000) < 1e-6
    small = PipelineConfig(dataset="cifar10", images_per_class=10, size=64, base_respacing="50").resolved()
    assert generation_tflop(small, 10) == 10 * 50 * 2 * BASE_GFLOP / 1000
    assert PEAK_TFLOPS == 790.0


def test_measured_rates_come_from_gpu_results_only(tmp_path) -> None:
    rows = [{"stage": "base64+up256", "variant": "cuda_graphs", "images_per_s": 4.0},
            {"stage": "base64+up256", "variant": "official", "images_per_s": 1.0}]
    (tmp_path / "gpu.json").write_text(json.dumps({"environment": {"device": "NVIDIA H200"}, "rows": rows}))
    (tmp_path / "cpu.json").write_text(json.dumps({"environment": {"device": "cpu (x86_64)"},
                                                   "rows": [{"stage": "base64+up256", "images_per_s": 99.0}]}))
    best = measured_images_per_s("base64+up256", [tmp_path])
    assert best is not None and best[0] == 4.0 and "cuda_graphs" in best[1]
    assert measured_images_per_s("base64", [tmp_path]) is None
