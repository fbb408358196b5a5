"""benchmarks/gpu_suite.py: time boxes, the budget, the report after every step, the parsers, --smoke."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import _suite  # noqa: E402
import gpu_suite  # noqa: E402

PY = sys.executable


def _py(code: str, name: str, cap: float = 30, **kw) -> _suite.Step:
    return _suite.Step(name, f"test step {name}", [PY, "-c", code], cap, min_s=kw.pop("min_s", 0.5), **kw)


def _run(tmp_path: Path, steps: list[_suite.Step], budget: float = 120) -> tuple[bool, dict, list[str]]:
    report = _suite.Report(tmp_path / "out" / "report.json", {"device": "test"}, steps)
    work = tmp_path / "work"
    work.mkdir()
    lines: list[str] = []
    finished = _suite.run_suite(steps, report, budget_s=budget, env=dict(os.environ), cwd=tmp_path, work=work,
                                log=lines.append)  # fmt: skip
    return finished, json.loads(report.path.read_text()), lines


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_step_over_its_time_box_is_killed_with_its_children_and_the_next_steps_still_run(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    report = tmp_path / "out" / "report.json"
    hang = (  # a step that starts a grandchild and then hangs: both must go
        "import subprocess, sys, time; "
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
        f"open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(120)"
    )
    # the third step passes only if the report on disk already holds the first two steps' outcomes
    reads_report = (
        f"import json, sys; d = json.load(open({str(report)!r})); "
        "s = {x['name']: x['status'] for x in d['steps']}; "
        "rows = {r['step'] for r in d['rows']}; "
        "sys.exit(0 if s['first'] == 'ok' and s['hang'] == 'timeout' and s['third'] == 'pending' "
        "and {'first', 'hang'} <= rows else 3)"
    )
    steps = [
        _py("print('hello')", "first"),
        _py(hang, "hang", cap=3),
        _py(reads_report, "third"),
    ]
    t0 = time.monotonic()
    finished, doc, lines = _run(tmp_path, steps)
    assert finished
    assert time.monotonic() - t0 < 60
    assert [s["status"] for s in doc["steps"]] == ["ok", "timeout", "ok"]
    assert doc["steps"][1]["timeout_s"] == 3
    assert 2.5 < doc["steps"][1]["seconds"] < 30
    assert doc["steps"][0]["log_tail"].strip() == "hello"
    for _ in range(50):  # the kill is synchronous, but the pid may take a moment to be reaped by init
        if not _alive(int(pidfile.read_text())):
            break
        time.sleep(0.1)
    assert not _alive(int(pidfile.read_text())), "the step's own child survived the time box"
    by_step = {r["step"]: r for r in doc["rows"]}
    assert by_step["hang"]["status"] == "timeout"
    assert set(by_step) == {"first", "hang", "third"}  # every step has a row with a status
    assert all(set(_suite.ROW_KEYS) <= set(r) for r in doc["rows"])
    assert any("timeout" in line for line in lines)


def test_a_crash_is_recorded_with_its_exit_code_and_log_and_partial_rows_are_kept(tmp_path):
    out = tmp_path / "partial.json"

    def parse(step, log):
        return [_suite.row(step.name, "ok", variant=r) for r in json.loads(out.read_text())], {"raw": True}

    crash = f"import json, sys; json.dump(['v1'], open({str(out)!r}, 'w')); print('boom', file=sys.stderr); sys.exit(7)"
    finished, doc, _ = _run(tmp_path, [_py(crash, "crash", parse=parse), _py("pass", "after")])
    assert finished
    assert doc["steps"][0]["status"] == "failed (exit 7)"
    assert doc["steps"][0]["rc"] == 7 and doc["steps"][0]["raw"] is True
    assert [(r["step"], r["variant"], r["status"]) for r in doc["rows"]] == [
        ("crash", "v1", "ok"),  # what it measured before crashing
        ("crash", None, "failed (exit 7)"),  # and a row saying it failed, with its last line
        ("after", None, "ok"),
    ]
    assert doc["rows"][1]["note"] == "boom"


def test_the_budget_skips_steps_it_cannot_fit_and_says_why(tmp_path):
    steps = [
        _py("import time; time.sleep(1)", "runs"),
        _py("pass", "too_big", min_s=1000),
        _py("pass", "told_to_skip", skip="smoke: not on a CPU"),
        _py("pass", "small"),
    ]
    finished, doc, _ = _run(tmp_path, steps, budget=60)
    status = {s["name"]: s["status"] for s in doc["steps"]}
    assert finished
    assert status["runs"] == "ok" and status["small"] == "ok"
    assert status["too_big"].startswith("skipped: budget (") and "needs 1000" in status["too_big"]
    assert status["told_to_skip"] == "skipped: smoke: not on a CPU"
    assert {r["step"] for r in doc["rows"]} == set(status)


def test_the_time_box_shrinks_to_the_budget_left(tmp_path):
    steps = [_py("import time; time.sleep(60)", "long", cap=500)]
    _, doc, _ = _run(tmp_path, steps, budget=_suite.RESERVE_S + 3)
    assert doc["steps"][0]["status"] == "timeout"
    assert doc["steps"][0]["timeout_s"] <= 3


def test_sigterm_stops_the_suite_records_the_running_step_and_kills_it(tmp_path):
    steps = [_py("import time; time.sleep(60)", "sleeper"), _py("pass", "never")]
    before = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        finished, doc, _ = _run(tmp_path, steps)
    finally:
        timer.cancel()
    assert not finished
    assert [s["status"] for s in doc["steps"]] == ["interrupted", "pending"]
    assert signal.getsignal(signal.SIGTERM) is before  # the handler was put back
    assert "SIGTERM" in doc["steps"][0]["log_tail"]


# ------------------------------------------------------------------------------------------ parsers
def test_pytest_summary_counts_and_failing_ids():
    log = (
        "..F.s\n"
        "FAILED tests/kernels/test_attention.py::test_triton_matches[fp16-64] - AssertionError: x\n"
        "ERROR tests/kernels/test_graphs.py::test_capture - RuntimeError\n"
        "==== 1 failed, 12 passed, 3 skipped, 1 error in 41.2s ====\n"
    )
    s = gpu_suite.pytest_summary(log)
    assert (s["passed"], s["failed"], s["skipped"], s["errors"]) == (12, 1, 3, 1)
    assert s["failing"] == ["tests/kernels/test_attention.py::test_triton_matches[fp16-64]",
                            "tests/kernels/test_graphs.py::test_capture"]  # fmt: skip
    rows, fields = gpu_suite.parse_pytest(_py("", "pytest_gpu"), log)
    assert rows[0]["status"] == "failed" and fields["pytest"] == s
    killed = gpu_suite.pytest_summary("...\n")
    assert killed["complete"] is False
    assert gpu_suite.parse_pytest(_py("", "pytest_gpu"), "....")[0][0]["status"] == "failed"
    assert gpu_suite.parse_pytest(_py("", "pytest_gpu"), "16 skipped in 3.1s")[0][0]["status"] == "ok"


def test_parse_official_keeps_the_best_run():
    lines = [json.dumps({"device": "d", "variant": "official-code", "stage": "base64+up256", "batch": 10,
                         "seconds": s, "images_per_s": 10 / s, "peak_mem_gb": 9.5}) for s in (20.0, 16.0)]  # fmt: skip
    rows, fields = gpu_suite.parse_official(_py("", "official_code_256"), "noise\n" + "\n".join(lines) + "\n")
    assert len(rows) == 1 and rows[0]["images_per_s"] == pytest.approx(10 / 16)
    assert rows[0]["variant"] == "official-code" and rows[0]["peak_mem_gb"] == 9.5
    assert len(fields["result"]["runs"]) == 2
    assert gpu_suite.parse_official(_py("", "x"), "Traceback ...") == ([], {})


def test_a_benchmark_steps_rows_come_from_its_json_file(tmp_path):
    (step,) = gpu_suite.select(gpu_suite.build_steps(True, tmp_path, tmp_path), ["kernels"], [], [])
    raw = {"environment": {"device": "d"}, "rows": [
        {"op": "attention", "case": "tiny", "backend": "sdpa", "ms": 2.0, "throughput": 1.5, "unit": "TFLOP/s",
         "max_abs_err": 0.0},
        {"op": "attention", "case": "tiny", "backend": "triton", "note": "BackendUnavailableError: no CUDA"},
    ]}  # fmt: skip
    step.json_out.write_text(json.dumps(raw))
    rows, fields = step.parse(step, "")
    assert fields == {"result": raw}
    assert [(r["step"], r["variant"], r["stage"], r["status"]) for r in rows] == [
        ("kernels", "sdpa", "attention tiny", "ok"),
        ("kernels", "triton", "attention tiny", "unavailable: BackendUnavailableError: no CUDA"),
    ]
    assert rows[0]["seconds"] == pytest.approx(0.002) and rows[0]["unit"] == "TFLOP/s"
    assert all(set(_suite.ROW_KEYS) <= set(r) for r in rows)


def test_annotate_speedups_official_bound_and_targets():
    row = _suite.row
    doc = {
        "steps": [{"name": "pytest_gpu", "pytest": {"passed": 1}}],
        "rows": [
            row("sampling_fast", "ok", variant="cuda_graphs", stage="base64+up256", batch=64, images_per_s=3.0,
                pct_of_flop_bound=30.0, flop_bound_images_per_s=10.0),
            row("sampling_fast", "ok", variant="cuda_graphs", stage="base64+up256", batch=32, images_per_s=2.0,
                pct_of_flop_bound=20.0, flop_bound_images_per_s=10.0),
            row("official_code_256", "ok", variant="official-code", stage="base64+up256", batch=10, images_per_s=0.5),
            row("sampling_fast", "timeout"),
        ],
    }  # fmt: skip
    gpu_suite.annotate(doc)
    fast64, fast32, official, _ = doc["rows"]
    assert fast64["x_official_code"] == pytest.approx(6.0) and fast32["x_official_code"] == pytest.approx(4.0)
    assert official["pct_of_flop_bound"] == pytest.approx(5.0)  # 0.5 of the 10 images/s the bound allows
    t = doc["targets"]["base64+up256"]
    assert t["best"]["batch"] == 64 and t["x_official_code"] == pytest.approx(6.0)
    assert t["best_pct_of_flop_bound"] == 30.0 and t["met"] is False  # 6x the official code, but 30 % < 50 %
    assert doc["targets"]["base64"]["best"] is None and doc["targets"]["base64"]["met"] is None
    assert doc["pytest"] == {"passed": 1}


# ------------------------------------------------------------------------------------------ the steps
def test_steps_are_in_value_order_and_use_the_paper_settings(tmp_path):
    anchors = tmp_path / "anchors"
    (anchors / "glide-text2im" / "glide_text2im").mkdir(parents=True)
    (anchors / "bench_official_glide.py").write_text("")
    (anchors / "glide-text2im" / "glide_text2im" / "model_creation.py").write_text("")
    steps = {s.name: s for s in gpu_suite.build_steps(False, tmp_path, anchors)}
    assert list(steps) == ["sampling_fast", "official_code_256", "sampling_official", "official_code_64", "kernels",
                           "pytest_gpu", "filter", "pretrain", "sampling_nchw", "sampling_compile"]  # fmt: skip
    assert all(s.skip is None for s in steps.values())
    fast = steps["sampling_fast"].argv
    assert fast[fast.index("--batches") + 1 : fast.index("--batches") + 3] == ["32", "64"]
    assert "--smoke" not in fast and fast[-2:] == ["--json", str(tmp_path / "sampling_fast.json")]
    off = steps["official_code_256"].argv
    assert off[1] == str(anchors / "bench_official_glide.py") and off[off.index("--batch") + 1] == "10"
    assert "--base-only" not in off and "--base-only" in steps["official_code_64"].argv
    assert steps["official_code_256"].pythonpath == [str(anchors / "glide-text2im")]
    assert "tests/kernels/test_attention.py" in steps["pytest_gpu"].argv
    assert sum(s.cap_s for s in steps.values()) > 420  # the budget, not the caps, bounds the whole


def test_without_anchors_the_official_steps_are_skipped_with_the_reason(tmp_path):
    steps = {s.name: s for s in gpu_suite.build_steps(True, tmp_path, tmp_path / "nowhere")}
    for name in ("official_code_256", "official_code_64"):
        assert steps[name].skip.startswith("anchors not found")
    assert steps["sampling_compile"].skip.startswith("smoke") and steps["sampling_nchw"].skip.startswith("smoke")
    assert all("--smoke" in s.argv for s in steps.values() if s.json_out is not None)
    assert all(s.cap_s == gpu_suite.SMOKE_CAP_S for s in steps.values())  # room for a busy CI machine


def test_select_only_skip_and_caps(tmp_path):
    steps = gpu_suite.build_steps(False, tmp_path, tmp_path)
    chosen = gpu_suite.select(steps, ["kernels", "filter"], ["filter"], ["kernels=33"])
    assert [s.name for s in chosen] == ["kernels"] and chosen[0].cap_s == 33
    with pytest.raises(SystemExit, match="unknown step"):
        gpu_suite.select(steps, ["kernel"], [], [])


def test_report_names_carry_the_device_and_never_overwrite(tmp_path):
    first = gpu_suite.report_path(tmp_path, "NVIDIA H200", smoke=False, partial=False)
    assert first.name.startswith("gpu_suite_nvidia_h200_20") and first.suffix == ".json"
    first.write_text("{}")
    again = gpu_suite.report_path(tmp_path, "NVIDIA H200", smoke=False, partial=False)
    assert again != first and again.stem.startswith(first.stem + "_")
    smoke = gpu_suite.report_path(tmp_path, "cpu (x86_64)", smoke=True, partial=True)
    assert smoke.name.startswith("gpu_suite_smoke_cpu_x86_64_") and smoke.stem.endswith("_partial")
    assert gpu_suite.report_path(tmp_path, "??", smoke=False, partial=False).name.startswith("gpu_suite_unknown_")


def test_member_paths_cover_every_member():
    paths = gpu_suite.member_paths()
    root = BENCH.parent
    assert str(root / "kernels" / "src") in paths and str(root / "tools" / "src") in paths
    assert str(root / "packages" / "diffusion" / "src") in paths
    assert len(paths) == 2 + len(list((root / "packages").glob("*/src")))


def test_without_a_gpu_the_full_suite_refuses_to_start(tmp_path, capsys):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    assert gpu_suite.main(["--out", str(tmp_path)]) == 2
    assert "use --smoke" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def _suite_cli(tmp_path: Path, *args: str, timeout: float = 1900) -> tuple[subprocess.CompletedProcess, dict]:
    done = subprocess.run([PY, str(BENCH / "gpu_suite.py"), "--smoke", "--out", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (report,) = tmp_path.glob("gpu_suite_smoke_*.json")
    assert report.with_suffix(".log").is_file()
    return done, json.loads(report.read_text())


def test_smoke_one_step_through_the_command_line(tmp_path):
    done, doc = _suite_cli(tmp_path, "--only", "kernels", "--commit", "abc123")
    h = doc["header"]
    assert h["git_commit"] == "abc123" and h["smoke"] is True and "torch" in h and "triton" in h
    assert "--only kernels" in h["command"]
    assert [s["name"] for s in doc["steps"]] == ["kernels"] and doc["steps"][0]["status"] == "ok"
    assert any(r["variant"] == "sdpa" and r["status"] == "ok" for r in doc["rows"])
    assert "kernel attention tiny" in done.stdout and "wrote " in done.stdout


@pytest.mark.slow
def test_smoke_runs_every_step_end_to_end(tmp_path):
    done, doc = _suite_cli(tmp_path)
    names = [s["name"] for s in doc["steps"]]
    assert names == [s.name for s in gpu_suite.build_steps(True, tmp_path, tmp_path)]
    anchors_here = gpu_suite.anchors_problem(gpu_suite.DEFAULT_ANCHORS) is None
    for s in doc["steps"]:
        assert s["status"] == "ok" or s["status"].startswith("skipped: "), (s["name"], s["status"], s.get("log_tail"))
        assert any(r["step"] == s["name"] and r["status"] for r in doc["rows"]), s["name"]
    status = {s["name"]: s["status"] for s in doc["steps"]}
    if anchors_here:
        assert status["official_code_64"] == "ok"
    else:
        assert "anchors not found" in status["official_code_64"]
    for name in ("sampling_fast", "sampling_official", "kernels", "pytest_gpu", "filter", "pretrain"):
        assert status[name] == "ok", name
    assert doc["pytest"]["skipped"] > 0 and doc["pytest"]["failed"] == 0  # no CUDA here: all skipped
    assert "target base64+up256" in done.stdout and done.stdout.rstrip().splitlines()[-1].startswith("wrote ")
