"""One prepared GPU check: every GPU figure the project still needs, in one time-boxed command.

    uv run python benchmarks/gpu_suite.py --out benchmarks/results/     # GPU (or plain python3 there)
    uv run python benchmarks/gpu_suite.py --smoke --out /tmp/gs         # CPU: tiny models, every step

Steps, most valuable first; each is a subprocess with its own time box, inside one total budget
(``--budget``, default 420 s), so one hang or crash never loses the rest:

  sampling_fast      bench_sampling.py, variant cuda_graphs, batches 32 and 64, base64+up256 then base64
  official_code_256  the official GLIDE code (``bench_official_glide.py`` from --anchors), batch 10, 256 px
  sampling_official  bench_sampling.py, variant official (our port of the official loop), batch 10
  official_code_64   the official code, base model only
  kernels            bench_kernels.py (attention, GroupNorm, sampler step at GLIDE shapes, fp16 and bf16)
  pytest_gpu         pytest -m gpu over the test files that hold GPU tests
  filter             bench_filter.py (CLIP scoring, batched against the paper-style loop)
  pretrain           bench_pretrain.py (shard loader alone, then a short resnet50 training run)
  sampling_nchw      bench_sampling.py, cuda_graphs at batch 64 with --channels-last off (does it pay?)
  sampling_compile   bench_sampling.py, variant compile, batch 64 (last: Dynamo can take minutes)

Writes ONE JSON, ``<out>/gpu_suite_<device>_<date>.json`` (header: device, torch, triton, CUDA, driver,
date, git commit, command; steps with status, time box and log tail; rows with step, variant, stage,
batch, images_per_s, x_official_code, pct_of_flop_bound, max_abs_err_vs_fp32, peak_mem_gb, status,
seconds; the pytest summary; the targets), rewritten after every step, plus ``<same name>.log`` with every
step's output. Prints a table last. The official code is never part of this repository: ``--anchors``
names a folder holding ``bench_official_glide.py`` and ``glide-text2im/`` (default ``../shared/anchors``;
``benchmarks/gpu_prepare.py`` copies it into the git-ignored ``.anchors/`` for a GPU machine). See
docs/kernels.md, "Running the GPU check".
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import git_commit, print_table, slug
from _suite import Parsed, Report, Step, row, run_suite

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
DEFAULT_ANCHORS = ROOT.parent / "shared" / "anchors"
STAGES = ("base64", "base64+up256")
TARGET_X_OFFICIAL = 3.0
SMOKE_CAP_S = 400.0
TARGET_PCT_OF_BOUND = 50.0
DISTS = ("triton", "open_clip_torch", "webdataset", "braceexpand", "ftfy", "wcwidth", "timm", "transformers",
         "safetensors", "numpy", "pytest", "xformers")  # fmt: skip

PROBE = r"""
import importlib.metadata as md, json, os, platform, sys
info = {"python": platform.python_version(), "executable": sys.executable, "platform": platform.platform(),
        "cpu_count": os.cpu_count()}
try:
    import torch
    info.update(torch=torch.__version__, cuda=torch.version.cuda, cuda_available=torch.cuda.is_available())
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(device=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1),
                    sm_count=p.multi_processor_count, capability=f"{p.major}.{p.minor}")
    else:
        info["device"] = "cpu (" + (platform.processor() or platform.machine()) + ")"
except Exception as exc:
    info.update(device="unknown", torch_error=f"{type(exc).__name__}: {exc}", cuda_available=False)
packages = {}
for name in sys.argv[1:]:
    try:
        packages[name] = md.version(name)
    except md.PackageNotFoundError:
        packages[name] = None
info.update(packages=packages, triton=packages.get("triton"))
print(json.dumps(info))
"""


# ------------------------------------------------------------------------------------------ environment
def member_paths(root: Path = ROOT) -> list[str]:
    """The workspace members' ``src`` folders (the implicit ``synthdata`` namespace spans them)."""
    paths = [root / "kernels" / "src", *sorted(root.glob("packages/*/src")), root / "tools" / "src"]
    return [str(p) for p in paths if p.is_dir()]


def suite_env(smoke: bool) -> dict[str, str]:
    """The steps' environment: the members on PYTHONPATH ahead of anything already there (the wheels)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [*member_paths(), env.get("PYTHONPATH", "")] if p)
    env.update(PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false", MPLBACKEND="Agg")
    if not smoke:  # the GPU machine has no network: fail at once instead of waiting on a download
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def _output(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> str | None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def probe(python: str, env: dict[str, str]) -> dict[str, Any]:
    """Device, versions and packages as the steps will see them (a subprocess: the suite itself never
    holds a CUDA context), the driver from nvidia-smi."""
    out = _output([python, "-c", PROBE, *DISTS], 180, env)
    info: dict[str, Any] = json.loads(out) if out else {"device": "unknown", "probe_error": "probe failed"}
    smi = _output(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"], 30)
    info["driver"] = smi.splitlines()[0].split(", ")[1] if smi and ", " in smi else None
    info["nvidia_smi"] = smi
    return info


# ------------------------------------------------------------------------------------------ reading results
ToRow = Callable[[dict[str, Any]], dict[str, Any]]
"""A benchmark's result row to a report row's fields (``status`` among them)."""


def parse_json(step: Step, log: str, to_row: ToRow) -> Parsed:
    """The rows of the step's ``--json`` file, each made a report row by ``to_row``; the whole file is kept
    as the step's ``result``."""
    assert step.json_out is not None
    data = json.loads(step.json_out.read_text())
    return [row(step.name, **to_row(r)) for r in data.get("rows", [])], {"result": data}


def sampling_row(r: dict[str, Any]) -> dict[str, Any]:
    return dict(status="ok", variant=r["variant"], stage=r["stage"], batch=r["batch"],
                images_per_s=r["images_per_s"], pct_of_flop_bound=r.get("pct_of_flop_bound"),
                max_abs_err_vs_fp32=r.get("max_abs_err_vs_fp32"), peak_mem_gb=r.get("peak_mem_gib"),
                seconds=r.get("seconds"), dtype=r.get("dtype"), ms_per_step=r.get("ms_per_step"),
                achieved_tflops=r.get("achieved_tflops"), flop_bound_images_per_s=r.get("flop_bound_images_per_s"),
                backends=r.get("backends"))  # fmt: skip


def kernels_row(r: dict[str, Any]) -> dict[str, Any]:
    return dict(status="ok" if "ms" in r else f"unavailable: {r.get('note', '')}"[:80], variant=r["backend"],
                stage=f"{r['op']} {r['case']}", max_abs_err_vs_fp32=r.get("max_abs_err"),
                seconds=r["ms"] / 1000 if "ms" in r else None, throughput=r.get("throughput"),
                unit=r.get("unit"))  # fmt: skip


def filter_row(r: dict[str, Any]) -> dict[str, Any]:
    return dict(status="ok", variant=r["method"], stage=f"{r['model']} {r['classes']} classes", batch=r["images"],
                images_per_s=r["images_per_s"], seconds=r["wall_s_all"],
                speedup_wall=r.get("speedup_wall"))  # fmt: skip


def pretrain_row(r: dict[str, Any]) -> dict[str, Any]:
    return dict(status="ok", variant=r["method"], stage=f"{r['model']} {r['img_size']}px {r['workers']} workers",
                batch=r["batch"], images_per_s=r["images_per_s"], data_wait_share=r.get("data_wait_share"))  # fmt: skip


def parse_official(step: Step, log: str) -> Parsed:
    """The official timing script prints one JSON line per timed run; the best run is kept."""
    runs = [json.loads(ln) for ln in log.splitlines() if ln.startswith("{") and '"official-code"' in ln]
    if not runs:
        return [], {}
    best = max(runs, key=lambda r: r["images_per_s"])
    out = row(step.name, "ok", variant="official-code", stage=best["stage"], batch=best["batch"],
              images_per_s=best["images_per_s"], peak_mem_gb=best.get("peak_mem_gb"), seconds=best["seconds"])  # fmt: skip
    return [out], {"result": {"runs": runs}}


def pytest_summary(log: str) -> dict[str, Any]:
    """Counts from pytest's last summary line and the ids of failed and erroring tests."""
    counts: dict[str, Any] = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    finals = [ln for ln in log.splitlines() if re.search(r"\d+ (passed|failed|skipped|errors?|deselected)", ln)]
    if finals:
        for n, what in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)", finals[-1]):
            counts["errors" if what.startswith("error") else what] = int(n)
    else:
        counts["complete"] = False  # killed before the summary
    counts["failing"] = [m.group(2) for m in re.finditer(r"^(FAILED|ERROR) (\S+)", log, re.MULTILINE)]
    return counts


def parse_pytest(step: Step, log: str) -> Parsed:
    s = pytest_summary(log)
    stage = f"{s['passed']} pass {s['failed']} fail {s['skipped']} skip {s['errors']} error"
    status = "ok" if s.get("complete", True) and not s["failed"] and not s["errors"] else "failed"
    return [row(step.name, status, variant="pytest -m gpu", stage=stage, failing=s["failing"])], {"pytest": s}


# ------------------------------------------------------------------------------------------ the steps
def gpu_test_files(tests: Path = ROOT / "tests") -> list[str]:
    """Test files that hold a ``pytest.mark.gpu`` test (collecting only these is faster and keeps an import
    error elsewhere out of this step)."""
    return sorted(str(p.relative_to(ROOT)) for p in tests.rglob("test_*.py") if "mark.gpu" in p.read_text())


def anchors_problem(anchors: Path) -> str | None:
    """Why ``anchors`` cannot run the official code, or None."""
    for need in ("bench_official_glide.py", "glide-text2im/glide_text2im/model_creation.py"):
        if not (anchors / need).is_file():
            return f"anchors not found ({anchors / need} is missing; run benchmarks/gpu_prepare.py or pass --anchors)"
    return None


def build_steps(smoke: bool, work: Path, anchors: Path, python: str = sys.executable) -> list[Step]:
    """The suite's steps in running order (see the module docstring)."""
    sm = ["--smoke"] if smoke else []

    def bench(name: str, what: str, script: str, args: list[str], cap: float, to_row: ToRow, **kw: Any) -> Step:
        out = work / f"{name}.json"
        argv = [python, str(BENCH / script), *sm, *args, "--json", str(out)]
        return Step(name, what, argv, cap, functools.partial(parse_json, to_row=to_row), json_out=out, **kw)

    def official(name: str, base_only: bool, cap: float) -> Step:
        argv = [python, str(anchors / "bench_official_glide.py"), "--repeats", "1"]
        argv += ["--cpu-smoke", "--batch", "1"] if smoke else ["--batch", "10"]
        argv += ["--base-only"] if base_only else []
        skip = anchors_problem(anchors)
        if smoke and not base_only and skip is None:
            skip = "smoke: the official upsampler at 256 px takes minutes on a CPU (official_code_64 runs the script)"
        stage = "64 px base" if base_only else "256 px (base + upsampler)"
        return Step(name, f"the official GLIDE code, {stage}, batch {1 if smoke else 10}", argv, cap,
                    parse_official, min_s=30, pythonpath=[str(anchors / "glide-text2im")], skip=skip)  # fmt: skip

    stages = ["--stages", "base64+up256", "base64"]
    steps = [
        bench("sampling_fast", "ours, cuda_graphs at batches 32 and 64", "bench_sampling.py",
              ["--variants", "cuda_graphs", *stages, *([] if smoke else ["--batches", "32", "64"])], 200,
              sampling_row, min_s=60),
        official("official_code_256", base_only=False, cap=150),
        bench("sampling_official", "ours, the official loop (eager fp16, text every step), batch 10",
              "bench_sampling.py", ["--variants", "official", *stages], 120, sampling_row, min_s=45),
        official("official_code_64", base_only=True, cap=60),
        bench("kernels", "kernel micro-benchmarks at GLIDE shapes", "bench_kernels.py", [], 90, kernels_row),
        Step("pytest_gpu", "pytest -m gpu", [python, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
             *gpu_test_files()], 120, parse_pytest, min_s=30),
        bench("filter", "CLIP filter throughput", "bench_filter.py", [], 90, filter_row),
        bench("pretrain", "pre-training loader and training throughput", "bench_pretrain.py", [], 90,
              pretrain_row),
        bench("sampling_nchw", "ours, cuda_graphs at batch 64 without channels_last", "bench_sampling.py",
              ["--variants", "cuda_graphs", "--channels-last", "off", "--batches", "64", "--stages", "base64+up256"],
              120, sampling_row, min_s=45,
              skip="smoke: channels_last is off on a CPU anyway (sampling_fast runs the script)" if smoke else None),
        bench("sampling_compile", "ours, torch.compile variant at batch 64", "bench_sampling.py",
              ["--variants", "compile", "--batches", "64", "--stages", "base64+up256"], 240, sampling_row,
              min_s=90, skip="smoke: torch.compile takes minutes on a CPU" if smoke else None),
    ]  # fmt: skip
    if smoke:  # tiny work, but a busy 2-core CI machine can be many times slower than an idle one
        for step in steps:
            step.cap_s = SMOKE_CAP_S
            step.what += " [smoke: tiny sizes]"
    return steps


# ------------------------------------------------------------------------------------------ the report
def annotate(doc: dict[str, Any]) -> None:
    """Add each of our sampling rows' speed-up over the official code at the same stage, the official
    code's % of the FLOP bound (from bench_sampling's bound for that stage) and the targets."""
    rows = [r for r in doc["rows"] if r["status"] == "ok" and r.get("images_per_s")]
    official = {r["stage"]: r["images_per_s"] for r in rows if r["variant"] == "official-code"}
    bound = {r["stage"]: r["flop_bound_images_per_s"] for r in rows if r.get("flop_bound_images_per_s")}
    ours = [r for r in rows if r["step"].startswith("sampling_")]
    for r in ours:
        if r["stage"] in official:
            r["x_official_code"] = r["images_per_s"] / official[r["stage"]]
    for r in rows:
        if r["variant"] == "official-code" and r["stage"] in bound:
            r["pct_of_flop_bound"] = 100 * r["images_per_s"] / bound[r["stage"]]
    targets = {}
    for stage in STAGES:
        mine = [r for r in ours if r["stage"] == stage]
        best = max(mine, key=lambda r: r["images_per_s"], default=None)
        pct = max((r["pct_of_flop_bound"] for r in mine if r.get("pct_of_flop_bound") is not None), default=None)
        x = best["images_per_s"] / official[stage] if best and stage in official else None
        targets[stage] = {
            "best": {k: best[k] for k in ("step", "variant", "batch", "images_per_s")} if best else None,
            "official_code_images_per_s": official.get(stage),
            "x_official_code": x, "target_x_official_code": TARGET_X_OFFICIAL,
            "best_pct_of_flop_bound": pct, "target_pct_of_flop_bound": TARGET_PCT_OF_BOUND,
            "met": None if x is None or pct is None else bool(x >= TARGET_X_OFFICIAL and pct >= TARGET_PCT_OF_BOUND),
        }  # fmt: skip
    doc["targets"] = targets
    pytest_rec = next((s for s in doc["steps"] if "pytest" in s), None)
    doc["pytest"] = pytest_rec["pytest"] if pytest_rec else None


TABLE = [("step", "step"), ("variant", "variant"), ("stage", "stage"), ("batch", "batch"),
         ("images_per_s", "img/s"), ("x_official_code", "x_official"), ("pct_of_flop_bound", "%bound"),
         ("max_abs_err_vs_fp32", "err_fp32"), ("peak_mem_gb", "peak_GiB"), ("status", "status"),
         ("seconds", "s")]  # fmt: skip


def print_report(doc: dict[str, Any], path: Path) -> None:
    """The header, one line per row and the targets (the device tool returns only the output's tail)."""
    h = doc["header"]
    print(f"\n{h.get('device')} | torch {h.get('torch')} | triton {h.get('triton')} | CUDA {h.get('cuda')} | "
          f"driver {h.get('driver')} | commit {h.get('git_commit')} | {h.get('date')}")  # fmt: skip
    kernel_rows = [r for r in doc["rows"] if r["step"] == "kernels" and r["variant"] is not None]
    rows = [r for r in doc["rows"] if r not in kernel_rows]
    cells = [{title: _short(r.get(key), key) for key, title in TABLE} for r in rows]
    print_table(cells, [title for _, title in TABLE])
    print_kernels(kernel_rows)
    if doc.get("pytest"):
        p = doc["pytest"]
        print(f"pytest -m gpu: {p['passed']} passed, {p['failed']} failed, {p['skipped']} skipped, {p['errors']} "
              f"errors" + (f"; failing: {' '.join(p['failing'][:12])}" if p["failing"] else ""))  # fmt: skip
    for stage, t in doc.get("targets", {}).items():
        best = t["best"]
        mine = f"{best['variant']} batch {best['batch']} {_num(best['images_per_s'])} img/s" if best else "none"
        print(f"target {stage}: ours {mine}, official code {_num(t['official_code_images_per_s'])} img/s, "
              f"x{_num(t['x_official_code'])} (want >= {TARGET_X_OFFICIAL:g}), "
              f"{_num(t['best_pct_of_flop_bound'])}% of the FLOP bound (want >= {TARGET_PCT_OF_BOUND:g})")  # fmt: skip
    print(f"wrote {path}")


def print_kernels(rows: list[dict[str, Any]]) -> None:
    """One line per kernel case: each backend's throughput and error (backends that cannot run: counted)."""
    cases: dict[str, list[str]] = {}
    unavailable = 0
    for r in rows:
        if r["status"] != "ok":
            unavailable += 1
            continue
        cases.setdefault(r["stage"], []).append(
            f"{r['variant']} {_num(r.get('throughput'))} {r.get('unit', '')} (err {_num(r['max_abs_err_vs_fp32'])})"
        )
    for stage, cells in cases.items():
        print(f"kernel {stage}: {', '.join(cells)}")
    if unavailable:
        print(f"kernel backends that could not run: {unavailable} (reasons in the JSON)")


def _short(value: Any, key: str) -> Any:
    if isinstance(value, str) and key in ("stage", "status", "variant"):
        return value if len(value) <= 34 else value[:33] + "~"
    if isinstance(value, float) and key == "seconds":
        return round(value, 1)
    return value


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


# ------------------------------------------------------------------------------------------ main
def report_path(out: Path, device: str, smoke: bool, partial: bool) -> Path:
    """``gpu_suite[_smoke]_<device>_<date>[_partial].json``, with the time added if that name is taken."""
    now = dt.datetime.now(dt.UTC)
    name = slug(device) or "unknown"
    stem = f"gpu_suite_{'smoke_' if smoke else ''}{name}_{now:%Y-%m-%d}{'_partial' if partial else ''}"
    path = out / f"{stem}.json"
    return out / f"{stem}_{now:%H%M%S}.json" if path.exists() else path


def select(steps: list[Step], only: list[str] | None, skip: list[str], caps: list[str]) -> list[Step]:
    """Apply ``--only``, ``--skip`` and ``--cap NAME=SECONDS``; unknown names are an error."""
    names = {s.name for s in steps}
    caps_by = dict(c.split("=", 1) for c in caps)
    unknown = sorted({*(only or []), *skip, *caps_by} - names)
    if unknown:
        raise SystemExit(f"gpu_suite: error: unknown step(s) {', '.join(unknown)}; steps: {', '.join(sorted(names))}")
    chosen = [s for s in steps if (only is None or s.name in only) and s.name not in skip]
    for s in chosen:
        if s.name in caps_by:
            s.cap_s = float(caps_by[s.name])
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="every step on the CPU with tiny models")
    p.add_argument("--out", type=Path, default=None, help="folder of the JSON (default benchmarks/results; "
                   "smoke: a temporary folder)")  # fmt: skip
    p.add_argument("--anchors", type=Path, default=DEFAULT_ANCHORS, help="folder with bench_official_glide.py "
                   "and glide-text2im/ (default ../shared/anchors; on a GPU machine .anchors)")  # fmt: skip
    p.add_argument("--budget", type=float, default=None, help="total seconds (default 420; smoke 1800)")
    p.add_argument("--only", nargs="+", default=None, metavar="STEP", help="run only these steps")
    p.add_argument("--skip", nargs="+", default=[], metavar="STEP", help="leave these steps out")
    p.add_argument("--cap", action="append", default=[], metavar="STEP=S", help="another time box for a step")
    p.add_argument("--commit", default=None, help="git commit to record (default: git rev-parse HEAD)")
    p.add_argument("--allow-cpu", action="store_true", help="run the full-size steps without a GPU")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = suite_env(args.smoke)
    anchors = args.anchors.absolute()
    header = probe(sys.executable, env)
    if not args.smoke and not header.get("cuda_available") and not args.allow_cpu:
        print(f"gpu_suite: error: no CUDA device here ({header.get('device')}); use --smoke on a CPU", file=sys.stderr)
        return 2
    out = args.out or (Path(tempfile.gettempdir()) / "gpu_suite_smoke" if args.smoke else BENCH / "results")
    header.update(date=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), git_commit=args.commit or git_commit(ROOT),
                  command=shlex.join(["python3", "benchmarks/gpu_suite.py", *(sys.argv[1:] if argv is None else argv)]),
                  smoke=args.smoke,
                  budget_s=args.budget or (1800.0 if args.smoke else 420.0), anchors=str(anchors))  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="gpu_suite_") as tmp:
        work = Path(tmp)
        steps = select(build_steps(args.smoke, work, anchors), args.only, args.skip, args.cap)
        path = report_path(out, header.get("device", "unknown"), args.smoke, bool(args.only or args.skip))
        report = Report(path, header, steps, annotate)
        finished = run_suite(steps, report, budget_s=header["budget_s"], env=env, cwd=ROOT, work=work,
                             log=lambda line: print(line, flush=True))  # fmt: skip
        with open(path.with_suffix(".log"), "w", encoding="utf-8") as log:
            for step in steps:
                step_log = work / f"{step.name}.log"
                text = step_log.read_text(errors="replace") if step_log.exists() else "(not run)\n"
                log.write(f"===== {step.name}: {' '.join(step.argv)}\n{text}\n")
    print_report(report.data(), path)
    return 0 if finished else 143


if __name__ == "__main__":
    sys.exit(main())
