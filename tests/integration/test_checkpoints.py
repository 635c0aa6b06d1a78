"""Trials that survive: a worker killed mid-trial, then a driver killed mid-sweep, each continued
from the trial's checkpoint in the same MLflow run, with the numbers of an uninterrupted trial.

`sweep run` and `sweep resume` as a user runs them (real processes, a real local Ray, the local
MLflow store), with test_faults' harness. The epochs are made long enough to kill in (more rows,
small batches, one step per call), not slowed by a hook. `sweep reproduce` trains the same trial
straight through in one process and exits 0 only when every final metric matches exactly.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cluster import Driver, wait_for
from mlflow.tracking import MlflowClient
from sweep_runs import LocalStore, trial_runs

from sweep.training.checkpoints import is_whole

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 10
EVERY = 2
SLOW_EPOCHS = [  # about a second an epoch on a loaded 2-core machine
    f"training.epochs={EPOCHS}",
    f"training.checkpoint_every={EVERY}",
    "resources.keep_checkpoints=2",
    "dataset.n_samples=4000",
    "training.batch_size=8",
    "training.steps_per_execution=1",
]


def _args(tmp_path: Path, *sets: str) -> list[str]:
    args = [str(ROOT / "examples" / "quick.yaml"), "--runs-dir", str(tmp_path), "--cpus", "2"]
    for item in (*SLOW_EPOCHS, *sets):
        args += ["--set", item]
    return args


def _checkpointed(store: LocalStore, tmp_path: Path) -> list[tuple[Any, list[Path]]]:
    """RUNNING trial runs with a pid whose Tune trial has a checkpoint on disk, and the checkpoints."""
    if not list(tmp_path.glob("*/*/*/checkpoint_*")):
        return []
    found = []
    for run in store.running_trials():
        trial_id = run.data.tags.get("trial.id")
        # whole ones only: Tune copies a checkpoint to storage file by file
        folders = [p for p in tmp_path.glob(f"*/*/{trial_id}/checkpoint_*") if is_whole(p)]
        if run.data.tags.get("ray.pid") and folders:
            found.append((run, folders))
    return found


def _alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie has stopped writing anything)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _sweep(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "sweep", *args], capture_output=True, text=True, timeout=900, cwd=cwd, env=env
    )


def _assert_each_epoch_once_and_reproduced(client: MlflowClient, run_id: str, tmp_path: Path) -> None:
    steps = [m.step for m in client.get_metric_history(run_id, "val_accuracy")]
    assert steps == list(range(1, EPOCHS + 1))  # every epoch once, none twice
    again = _sweep("reproduce", run_id, "--runs-dir", str(tmp_path), cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]  # same final metrics
    assert "identical" in again.stdout


def test_a_worker_killed_mid_trial_continues_from_its_checkpoint(tmp_path: Path) -> None:
    driver = Driver(_args(tmp_path), env={**os.environ, "COLUMNS": "200"}, cwd=tmp_path)
    store = LocalStore(tmp_path)
    try:
        victim, folders = driver.wait_for(
            lambda: next(iter(_checkpointed(store, tmp_path)), None), 600, "a checkpoint", every=0.3
        )
        os.kill(int(victim.data.tags["ray.pid"]), signal.SIGKILL)
        returncode = driver.finish(timeout=900)
    finally:
        driver.kill()
    output = driver.output
    assert returncode == 0, output[-3000:]
    assert "Traceback" not in output
    assert "RETRYING" in output and re.search(r"state\s+finished: 4 finished, 0 failed", output)
    sweep_id = re.search(r"sweep id\s+(\S+)", output).group(1)
    client = store.client
    runs = trial_runs(client, sweep_id)
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    killed = client.get_run(victim.info.run_id)
    tags = killed.data.tags
    assert tags["trial.attempts"] == "2" and tags["trial.attempt_1.error"]
    resumed_from = int(tags["trial.attempt_2.resumed_from_epoch"])
    assert resumed_from >= EVERY and resumed_from % EVERY == 0, tags
    assert "trial.attempt_2.checkpoint_error" not in tags
    _assert_each_epoch_once_and_reproduced(client, killed.info.run_id, tmp_path)
    assert len(folders) <= 2  # resources.keep_checkpoints
    assert not list(tmp_path.glob("*/*/*/checkpoint_*"))  # removed once each trial ended


def test_a_killed_driver_resumed_continues_trials_from_checkpoints_or_the_start_with_the_reason(
    tmp_path: Path,
) -> None:
    driver = Driver(_args(tmp_path), env={**os.environ, "COLUMNS": "200"}, cwd=tmp_path)
    store = LocalStore(tmp_path)
    try:
        # both trials that run at once (2 CPUs) have a checkpoint
        caught = driver.wait_for(
            lambda: (found := _checkpointed(store, tmp_path)) and len(found) == 2 and found,
            600,
            "two trials with checkpoints",
            every=0.3,
        )
    finally:
        driver.kill()  # the driver's process group: Ray's local workers go with it
    workers = [int(run.data.tags["ray.pid"]) for run, _ in caught]
    wait_for(lambda: not any(map(_alive, workers)), 60, "the trials' workers to exit", every=0.2)
    sweep_id = next(p.name for p in tmp_path.glob("quick-*") if p.is_dir())
    assert all(len(folders) <= 2 for _, folders in caught)  # resources.keep_checkpoints
    by_run = {run.info.run_id: run.data.tags["trial.id"] for run, _ in caught}
    intact, corrupt = sorted(by_run)
    # what is on disk now: a trial may have written a newer checkpoint after it was caught
    on_disk = {run_id: list(tmp_path.glob(f"*/*/{trial}/checkpoint_*")) for run_id, trial in by_run.items()}
    assert all(on_disk.values())
    for folder in on_disk[corrupt]:
        (folder / "state.npz").write_bytes(b"not a zip archive")

    resumed = _sweep("resume", sweep_id, "--runs-dir", str(tmp_path), "--cpus", "2", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stdout + resumed.stderr
    client = store.client
    runs = {r.info.run_id: r for r in trial_runs(client, sweep_id)}
    assert len(runs) == 4 and {r.info.status for r in runs.values()} == {"FINISHED"}
    assert {intact, corrupt} <= runs.keys()  # the same runs went on

    kept = runs[intact].data.tags
    assert kept["trial.attempts"] == "2" and kept["trial.attempt_1.error"]
    assert int(kept["trial.attempt_2.resumed_from_epoch"]) >= EVERY
    assert "trial.attempt_2.checkpoint_error" not in kept
    _assert_each_epoch_once_and_reproduced(client, intact, tmp_path)

    broken = runs[corrupt].data.tags
    assert broken["trial.attempt_2.resumed_from_epoch"] == "0"  # started over, in the same run
    assert "state.npz is unreadable" in broken["trial.attempt_2.checkpoint_error"]
    _assert_each_epoch_once_and_reproduced(client, corrupt, tmp_path)
    assert not list(tmp_path.glob("*/*/*/checkpoint_*"))  # every trial ended: none left
