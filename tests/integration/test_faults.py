"""Faults inside a sweep: a trial's Ray worker process SIGKILLed mid-trial, no retries left.

`sweep run` as a user runs it (a real process, a real local Ray, the local MLflow store); the test
reads the trial's worker pid from its running MLflow run (`ray.pid`, written at its first epoch)
and kills that process. With `resources.max_failures: 0` the trial ends FAILED as an
infrastructure failure, and the sweep goes on. With retries left the trial runs again in the same
MLflow run, from its checkpoint: test_checkpoints.py.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest
from cluster import Driver
from sweep_runs import LocalStore, trial_runs

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 30


def running_with_pid(store: LocalStore) -> Any:
    """A RUNNING trial run that has recorded an epoch and the pid of its worker, or None."""
    runs = store.running_trials()
    return next((r for r in runs if r.data.metrics and r.data.tags.get("ray.pid")), None)


def test_a_worker_killed_mid_trial_with_no_retries_left_fails_with_the_reason(tmp_path: Path) -> None:
    args = [str(ROOT / "examples" / "quick.yaml"), "--runs-dir", str(tmp_path), "--cpus", "1"]
    args += ["--set", f"training.epochs={EPOCHS}", "--set", "resources.max_failures=0"]
    driver = Driver(args, env={**os.environ, "COLUMNS": "200"}, cwd=tmp_path)
    store = LocalStore(tmp_path)
    try:
        victim = driver.wait_for(lambda: running_with_pid(store), 300, "a trial training", every=0.5)
        os.kill(int(victim.data.tags["ray.pid"]), signal.SIGKILL)
        returncode = driver.finish(timeout=600)
    finally:
        driver.kill()
    output = driver.output
    assert returncode == 0, output[-3000:]
    assert "Traceback" not in output
    sweep_id = re.search(r"sweep id\s+(\S+)", output).group(1)
    client = store.client
    runs = trial_runs(client, sweep_id)
    assert len(runs) == 4 and not [r for r in runs if r.info.status == "RUNNING"]
    killed = client.get_run(victim.info.run_id)
    others = [r for r in runs if r.info.run_id != victim.info.run_id]
    assert {r.info.status for r in others} == {"FINISHED"}
    assert killed.info.status == "FAILED"
    assert killed.data.tags["trial.failure"] == "infrastructure"
    assert killed.data.tags["error"]
    assert re.search(r"state\s+finished: 3 finished, 1 failed", output)
    report = (tmp_path / sweep_id / "report" / "report.md").read_text()
    assert "1 of 4 trials failed or diverged and are left out" in report  # it says what it left out
