"""A writer killed with SIGKILL mid-shard leaves nothing that readers or verify accept as complete."""

import os
import signal
import subprocess
import sys
import textwrap
import time

from synthdata.shards import iter_samples, list_shards, plan_resume, shard_name, verify_dataset

WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from synthdata.shards import Sample, ShardWriter
    out = sys.argv[1]
    with ShardWriter(out, prefix="gen", max_count=3) as w:
        for i in range(10_000):
            w.write(Sample(f"k{i:05d}", np.full((64, 64, 3), i % 255, np.uint8), 0))
            if i == 4:
                print("ready", flush=True)
            time.sleep(0.01)
    """
)


def test_sigkill_mid_shard(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.time() + 20
        while not list(tmp_path.glob(".gen-*.tmp-*")) and time.time() < deadline:
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    complete = list_shards(tmp_path)
    temps = list(tmp_path.glob(".gen-*.tmp-*"))
    assert temps, "the kill should have caught a shard in progress"
    # every sample a reader yields is from a complete shard, and each complete shard verifies
    keys = [s.key for s in iter_samples(tmp_path)]
    assert len(keys) == 3 * len(complete)
    report = verify_dataset(tmp_path)
    assert all(p.where == "dataset.json" or p.kind == "missing sidecar" for p in report.problems)
    assert {w.kind for w in report.warnings} == {"stale temp file"}
    # resume bookkeeping removes the leftovers of the shards it plans to redo
    planned = [shard_name("gen", 0, i) for i in range(len(complete) + 2)]
    plan = plan_resume(tmp_path, planned)
    assert list(plan.complete) == [p.name for p in complete]
    assert not list(tmp_path.glob(".gen-*.tmp-*"))
