"""The machinery of ``gpu_suite.py``: steps run as time-boxed subprocesses under one total budget, and one
JSON report rewritten atomically after every step (a kill at the time limit keeps the finished rows).

Knows nothing about what the steps measure: a :class:`Step` carries its command and a ``parse`` function
that turns its output into rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROW_KEYS = ("step", "variant", "stage", "batch", "images_per_s", "pct_of_flop_bound", "max_abs_err_vs_fp32",
            "peak_mem_gb", "status", "seconds")  # fmt: skip
RESERVE_S = 5.0
"""Seconds kept back from the budget for the last report write and the table."""

Parsed = tuple[list[dict[str, Any]], dict[str, Any]]
"""A step's rows and the fields it adds to its step record (its raw result, a pytest summary)."""


@dataclass
class Step:
    """One subprocess of the suite and how to read what it produced."""

    name: str
    what: str
    argv: list[str]
    cap_s: float
    """The step's own time box; the budget left can shorten it."""
    parse: Callable[[Step, str], Parsed] | None = None
    """``parse(step, log text)``; also called after a failure or timeout (partial results)."""
    min_s: float = 20.0
    """Below this much budget left the step is skipped, not started."""
    json_out: Path | None = None
    pythonpath: list[str] = field(default_factory=list)
    """PYTHONPATH entries this step needs before the suite's own."""
    skip: str | None = None
    """Why the step is not run at all (recorded as ``skipped: <reason>``)."""


@dataclass
class Outcome:
    status: str
    """``ok``, ``failed (exit N)``, ``timeout``, ``interrupted`` or ``skipped: <reason>``."""
    rc: int | None
    seconds: float
    timeout_s: float | None = None
    log: str = ""


class Interrupted(Exception):
    """The suite got SIGTERM or SIGINT: record what is running as interrupted, write, stop."""


def row(step: str, status: str, **fields: Any) -> dict[str, Any]:
    """A report row with every key of :data:`ROW_KEYS` (None where unknown) plus ``fields``' extras."""
    out: dict[str, Any] = dict.fromkeys(ROW_KEYS)
    out.update(fields, step=step, status=status)
    return out


def _kill_group(proc: subprocess.Popen) -> None:
    """End the step's process group (it runs in its own session): TERM, then KILL after 5 s."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_step(step: Step, timeout_s: float, log_path: Path, env: dict[str, str], cwd: Path) -> Outcome:
    """Run ``step.argv`` with stdout and stderr into ``log_path``, killed after ``timeout_s``."""
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(step.argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        try:
            rc: int | None = proc.wait(timeout=timeout_s)
            status = "ok" if rc == 0 else f"failed (exit {rc})"
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            rc, status = None, "timeout"
        except BaseException:  # Interrupted or Ctrl-C: the step goes down with the suite
            _kill_group(proc)
            raise
    text = log_path.read_text(errors="replace")
    return Outcome(status, rc, time.monotonic() - t0, timeout_s, text)


class Report:
    """The suite's one JSON file: header, step records, rows; rewritten atomically after every change."""

    def __init__(self, path: Path, header: dict[str, Any], steps: Sequence[Step],
                 annotate: Callable[[dict[str, Any]], None] | None = None) -> None:  # fmt: skip
        self.path, self.header, self.annotate = path, header, annotate
        self.steps: list[dict[str, Any]] = [
            {"name": s.name, "what": s.what, "command": shlex.join(s.argv), "cap_s": s.cap_s, "status": "pending"}
            for s in steps
        ]
        self.rows: list[dict[str, Any]] = []

    def record(self, index: int, outcome: Outcome, rows: list[dict[str, Any]], fields: dict[str, Any]) -> None:
        """Store step ``index``'s outcome and rows (plus a status row unless it ran fine and gave rows)."""
        rec = self.steps[index]
        rec.update(status=outcome.status, rc=outcome.rc, seconds=round(outcome.seconds, 2),
                   timeout_s=outcome.timeout_s, log_tail=outcome.log[-3000:], **fields)  # fmt: skip
        self.rows.extend(rows)
        if outcome.status != "ok" or not rows:
            note = _last_line(outcome.log) if outcome.status != "ok" else "no rows"
            self.rows.append(row(rec["name"], outcome.status, seconds=round(outcome.seconds, 2), note=note))

    def data(self) -> dict[str, Any]:
        doc = {"suite": "gpu_suite", "header": self.header, "steps": self.steps, "rows": self.rows}
        if self.annotate is not None:
            self.annotate(doc)
        return doc

    def write(self) -> Path:
        """Write the report atomically (temporary file, fsync, rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.data(), fh, indent=1, default=str, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        return self.path


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][-300:] if lines else ""


def _parse(step: Step, outcome: Outcome) -> Parsed:
    if step.parse is None:
        return [], {}
    try:
        return step.parse(step, outcome.log)
    except Exception as exc:  # a failed or killed step may have left no or half a result
        return [], {"parse_error": f"{type(exc).__name__}: {exc}"}


@contextlib.contextmanager
def _stop_on_signals() -> Any:
    def handler(signum: int, frame: Any) -> None:
        raise Interrupted(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run_suite(steps: Sequence[Step], report: Report, *, budget_s: float, env: dict[str, str], cwd: Path,
              work: Path, log: Callable[[str], None] = print) -> bool:  # fmt: skip
    """Run ``steps`` in order inside ``budget_s`` seconds, writing ``report`` after each; False if stopped
    by SIGTERM/SIGINT (the step running then is recorded as ``interrupted``). A step is skipped, with the
    reason, when the budget left is under its ``min_s``; otherwise its time box is ``min(cap_s, left)``."""
    deadline = time.monotonic() + budget_s
    report.write()
    with _stop_on_signals():
        i = 0
        try:
            for i, step in enumerate(steps):
                _run_one(i, len(steps), step, report, deadline - time.monotonic() - RESERVE_S, env, cwd, work, log)
        except Interrupted as exc:
            if report.steps[i]["status"] == "pending":  # not if it came just after the step was recorded
                path = work / f"{steps[i].name}.log"
                text = path.read_text(errors="replace") if path.exists() else ""
                report.record(i, Outcome("interrupted", None, 0.0, None, f"{text}\n[suite stopped by {exc}]"), [], {})
            report.write()
            log(f"    -> interrupted by {exc}")
            return False
    return True


def _run_one(i: int, n: int, step: Step, report: Report, left: float, env: dict[str, str], cwd: Path,
             work: Path, log: Callable[[str], None]) -> None:  # fmt: skip
    skip = step.skip
    if skip is None and left < step.min_s:
        skip = f"budget ({max(left, 0):.0f} s left, needs {step.min_s:.0f})"
    if skip is not None:
        log(f"[{i + 1}/{n}] {step.name}: skipped: {skip}")
        report.record(i, Outcome(f"skipped: {skip}", None, 0.0), [], {})
        report.write()
        return
    timeout = min(step.cap_s, left)
    log(f"[{i + 1}/{n}] {step.name}: {step.what} (time box {timeout:.0f} s)")
    step_env = dict(env)
    if step.pythonpath:
        step_env["PYTHONPATH"] = os.pathsep.join(p for p in [*step.pythonpath, env.get("PYTHONPATH", "")] if p)
    outcome = run_step(step, timeout, work / f"{step.name}.log", step_env, cwd)
    rows, fields = _parse(step, outcome)
    report.record(i, outcome, rows, fields)
    report.write()
    log(f"    -> {outcome.status} in {outcome.seconds:.0f} s, {len(rows)} row(s)")
    if outcome.status != "ok":
        for line in outcome.log.strip().splitlines()[-6:]:
            log(f"    | {line[-160:]}")
