"""``synth-pipeline --dry-run``: what a run would do (images and shards per stage, which stages are already
finished) and what its generation costs in GPU time, before anything is loaded or written.

The cost is counted, not guessed: GLIDE's forward passes at the run's settings times the FLOPs of one
forward (torch's FLOP counter on the official configs, ``docs/kernels.md``) over the dense bf16 rate of an
H100 (790 TFLOP/s measured): a floor no implementation beats. Where ``benchmarks/results/`` holds images/s
measured on a GPU for the same stage, the estimate from that figure is shown beside it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthdata.tools._pipeline import layout
from synthdata.tools._pipeline.config import PipelineConfig

#: GFLOP of one forward of one sample, official configs (docs/kernels.md: torch's FLOP counter, text
#: transformer included): the 64 px base model and the 256 px upsampler.
BASE_GFLOP = 238.0
UPSAMPLE_GFLOP = 1281.0
#: Dense bf16 matrix rate of one H100 measured here (DESIGN.md), the bound's denominator.
PEAK_TFLOPS = 790.0
#: CLIP RN50 image forward at 224 px (open_clip's profile), for the filter's scoring.
CLIP_RN50_GFLOP = 4.1


@dataclass(frozen=True, slots=True)
class StagePlan:
    name: str
    work: str
    status: str


def _respaced_steps(spec: str) -> int:
    """Sampler steps of a respacing spec: ``"100"``, ``"fast27"``, ``"ddim50"`` or comma-separated sections."""
    spec = str(spec)
    if spec.startswith("ddim"):
        return int(spec[4:])
    if spec.startswith("fast"):
        return int(spec[4:])
    return sum(int(part) for part in spec.split(","))


def generation_tflop(cfg: PipelineConfig, images: int) -> float:
    """TFLOP that generating ``images`` costs at ``cfg``'s settings (guidance doubles the base batch)."""
    base = _respaced_steps(cfg.base_respacing or "100") * 2 * BASE_GFLOP
    up = _respaced_steps(cfg.up_respacing or "fast27") * UPSAMPLE_GFLOP if cfg.size == 256 else 0.0
    return images * (base + up) / 1000.0


def measured_images_per_s(stage: str, roots: list[Path]) -> tuple[float, str] | None:
    """The best GPU images/s measured for ``stage`` (``base64`` / ``base64+up256``) in benchmark JSON files."""
    best: tuple[float, str] | None = None
    for root in roots:
        for path in sorted(root.glob("*.json")) if root.is_dir() else []:
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            device = str((doc.get("environment") or doc.get("header") or {}).get("device", ""))
            if "cuda" not in device.lower() and "h100" not in device.lower() and "h200" not in device.lower():
                continue
            for row in doc.get("rows") or []:
                ips = row.get("images_per_s") if isinstance(row, dict) else None
                usable = row.get("stage") == stage and isinstance(ips, int | float) and ips > 0
                if usable and (best is None or ips > best[0]):
                    best = (float(ips), f"{path.name}: {row.get('variant')} on {device}")
    return best


def _result_roots() -> list[Path]:
    here = Path(__file__).resolve()
    roots = [Path(os.getcwd()) / "benchmarks" / "results"]
    roots += [p / "benchmarks" / "results" for p in here.parents if (p / "benchmarks" / "results").is_dir()]
    return list(dict.fromkeys(roots))


def _status(run_dir: Path, stage: str) -> str:
    from synthdata.tools._pipeline.stages import read_marker

    return "finished" if run_dir.is_dir() and read_marker(run_dir, stage) is not None else "to run"


def plan_rows(cfg: PipelineConfig, classes: int, run_dir: Path) -> tuple[list[StagePlan], dict[str, Any]]:
    """One row per stage and the generation's cost figures."""
    images = classes * int(cfg.images_per_class or 0)
    prompts = classes * cfg.prompts_per_class
    made = prompts * int(cfg.images_per_prompt or 1) * int(cfg.shots or 1)
    shards = math.ceil(made / int(cfg.shard_size or 1000))
    kept = classes * int(cfg.keep_per_class or 0)
    rows = [
        StagePlan("prompts", f"{prompts} prompts ({cfg.prompt_method}, {cfg.prompts_per_class} a class)", ""),
        StagePlan("fewshot", f"{cfg.shots} real images a class from {cfg.few_shot}" if cfg.few_shot else "-", ""),
        StagePlan("generate", f"{made} images at {cfg.size} px into {shards} shard(s) ({images} wanted)", ""),
        StagePlan("filter", f"score {made} images with {cfg.clip_model}/{cfg.clip_pretrained}, keep {kept}", ""),
        StagePlan("eval", "smoke stand-in test set" if cfg.eval_dir is None else "- (--eval given)", ""),
        StagePlan("tune", f"{cfg.epochs} epochs over {kept} images (batch {cfg.tune_batch_size})", ""),
        StagePlan("report", "report.html", ""),
    ]
    off = {"fewshot": cfg.few_shot is None, "eval": cfg.eval_dir is not None}
    rows = [StagePlan(r.name, r.work, "off" if off.get(r.name) else _status(run_dir, r.name)) for r in rows]
    tflop = generation_tflop(cfg, made)
    stage = "base64+up256" if cfg.size == 256 else "base64"
    cost = {
        "images": made,
        "tflop": tflop,
        "bound_gpu_s": tflop / PEAK_TFLOPS,
        "filter_gpu_s": made * CLIP_RN50_GFLOP / 1000.0 / PEAK_TFLOPS,
        "measured": measured_images_per_s(stage, _result_roots()),
        "stage": stage,
    }
    return rows, cost


def dry_run(cfg: PipelineConfig, run_dir: str | os.PathLike[str]) -> str:
    """The plan of a run as text (nothing is loaded or written)."""
    from synthdata.tools._pipeline.runner import resolve_classes

    cfg = cfg.resolved()
    classnames, _, prefix, _ = resolve_classes(cfg)
    rows, cost = plan_rows(cfg, len(classnames), Path(run_dir))
    lines = [
        f"synth-pipeline plan for {cfg.name}: {len(classnames)} classes, recipe {cfg.stage_recipe}, "
        f"prefix {prefix!r}, into {run_dir}",
        f"{'stage':9s} {'status':9s} work",
    ]
    lines += [f"{r.name:9s} {r.status:9s} {r.work}" for r in rows]
    hours = cost["bound_gpu_s"] / 3600
    lines.append(
        f"generation: {cost['tflop']:,.0f} TFLOP ({cost['images']} images x "
        f"{cfg.base_respacing} base steps x 2 (guidance)"
        + (f" + {cfg.up_respacing} upsampler steps" if cfg.size == 256 else "")
        + f"); floor {cost['bound_gpu_s']:,.0f} GPU-s ({hours:,.2f} GPU-h) at {PEAK_TFLOPS:.0f} TFLOP/s"
    )
    if cost["measured"] is not None:
        ips, where = cost["measured"]
        lines.append(f"at the measured {ips:.2f} images/s/GPU ({where}): {cost['images'] / ips:,.0f} GPU-s")
    else:
        lines.append(f"no GPU measurement of {cost['stage']} in benchmarks/results/ (run benchmarks/gpu_suite.py)")
    lines.append(f"filter scoring: floor {cost['filter_gpu_s']:,.1f} GPU-s; tuning on cached features: minutes")
    lines.append(f"outputs: {layout.GENERATED_DIR}/, {layout.FILTER_DIR}/, {layout.TUNE_DIR}/, {layout.REPORT_HTML}")
    return "\n".join(lines)
