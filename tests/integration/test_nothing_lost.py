"""Nothing lost: one sweep through every fault in turn, then MLflow checked against Tune's own record.

A sweep POSTed to the REST service (`sweep serve` on loopback, a token-auth Ray head, an
`mlflow server`) goes through, in turn: a trial's Ray worker SIGKILLed, the tracking server down
for 10 s, the REST service restarted, the job's driver SIGKILLed, then `sweep resume`. After it:
one terminal (FINISHED) MLflow run per trial, each with its complete metric history equal to what
Tune itself recorded (result.json), no run left RUNNING, the service answering SUCCEEDED with a
report.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from api_server import ApiServer, serve_env, until_ended, write_data
from cluster import MlflowServer, RayCluster, wait_for
from mlflow.tracking import MlflowClient
from sweep_runs import trial_runs

from sweep.results import find_sweep
from sweep.trial import SEED_KEY

pytestmark = pytest.mark.slow

SWEEP = [sys.executable, "-m", "sweep"]
# Long enough that trials still train after the outage and the restarts (~50 s in which the test
# cannot see the store): one trial at a time (a 1-CPU node), 80 epochs of 25 steps each.
EPOCHS = 80
SPEC = {
    "name": "nothing-lost",
    "dataset": {"source": "csv", "path": "sets/train.csv", "target": "y"},
    "model": {"hidden_units": [8]},
    "search": {
        "placement": ["before_activation", "none"],
        "dropout": [0.0, 0.3],
        "optimizer": [{"name": "adam", "learning_rate": 0.01}],
        "seeds": 2,
    },
    "training": {"epochs": EPOCHS, "batch_size": 8},
    "tracking": {"experiment": "nothing-lost"},
}


def training(client: MlflowClient, sweep_id: str) -> Any:
    """A RUNNING trial run of the sweep that has recorded an epoch and its worker's pid, or None."""
    try:
        runs = trial_runs(client, sweep_id)
    except Exception:  # no parent yet, or the store is briefly away
        return None
    return next(
        (r for r in runs if r.info.status == "RUNNING" and r.data.metrics and r.data.tags.get("ray.pid")),
        None,
    )


def tune_record(sweep_dir: Path, ray_temp: Path) -> dict[tuple[str, float, int], dict[int, float]]:
    """What Tune itself recorded: (placement, dropout, seed) -> epoch -> val_accuracy, over every
    Tune trial of that configuration (a retried attempt's last value; a trial `sweep resume`
    continued from its checkpoint is a new Tune trial reporting only the epochs after it).

    Tune's JSON logger writes result.json in the driver's staging dir under Ray's session dir and copies it to
    the sweep's folder now and then; a SIGKILLed driver's last results are only in the former.
    """
    out: dict[tuple[str, float, int], dict[int, float]] = {}
    files = [
        *sweep_dir.glob("attempt-*/*/result.json"),
        *ray_temp.rglob("attempt-*/driver_artifacts/*/result.json"),
    ]
    for results in files:
        for line in results.read_text().splitlines():
            result = json.loads(line)
            if "epoch" in result and "val_accuracy" in result:
                config = result["config"]
                key = (config["placement"], float(config["dropout"]), int(config[SEED_KEY]))
                out.setdefault(key, {})[int(result["epoch"])] = float(result["val_accuracy"])
    return out


def driver_pids(sweep_id: str) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-f", f"sweep run .*--sweep-id {sweep_id}"], capture_output=True, text=True
    )
    return [int(pid) for pid in found.stdout.split()]


def test_a_sweep_through_every_fault_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tune's own per-trial record (result.json), which sweep switches off for speed, switched on:
    # the nodes (and so the job's driver) and the resuming driver inherit it.
    monkeypatch.setenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0")
    data_root, runs_dir = tmp_path / "data", tmp_path / "runs"
    write_data(data_root / "sets")
    with (
        MlflowServer(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts") as tracking,
        RayCluster(tmp_path / "cluster", nodes=1, cpus_per_node=1) as cluster,
    ):
        env = serve_env(
            cluster, tracking.url, data_root, SWEEP_RUNS_DIR=str(runs_dir), SWEEP_TRACKING_PATIENCE_S="120"
        )
        service = ApiServer(tmp_path / "serve", env).start()
        try:
            with service.client() as api:
                posted = api.post("/v1/sweeps", json=SPEC)
                assert posted.status_code == 202, posted.text
                sweep_id = posted.json()["id"]
            client = MlflowClient(tracking.url)

            # 1. A trial's worker process dies mid-trial.
            victim = wait_for(lambda: training(client, sweep_id), 300, "a trial training")
            os.kill(int(victim.data.tags["ray.pid"]), signal.SIGKILL)

            # 2. The tracking server goes away for 10 s while trials train, and 3. the REST service
            # restarts meanwhile; the sweep is still there, still running.
            wait_for(lambda: training(client, sweep_id), 300, "training again")
            service.stop()
            tracking.stop()
            time.sleep(10)
            tracking.start()
            service.start()
            with service.client() as api:
                assert api.get(f"/v1/sweeps/{sweep_id}").json()["status"] in ("QUEUED", "RUNNING")

            # 4. The job's driver is SIGKILLed while trials train: the job fails, runs stay open.
            def training_or_over() -> Any:
                found = training(client, sweep_id)
                runs = [] if found else trial_runs(client, sweep_id)
                assert found or len(runs) < 8 or {r.info.status for r in runs} != {"FINISHED"}, (
                    "the sweep ended before its driver could be killed: make it longer (EPOCHS)"
                )
                return found

            wait_for(training_or_over, 300, "training after the restarts")
            pids = wait_for(lambda: driver_pids(sweep_id), 60, "the job's driver process")
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            with service.client() as api:
                assert until_ended(api, sweep_id, timeout=120)["status"] == "FAILED"

            # 5. `sweep resume` finishes it, from the folder the job left.
            resumed = subprocess.run(
                [*SWEEP, "resume", sweep_id, "--ray-address", cluster.address, "--runs-dir", str(runs_dir)],
                env={**env, "COLUMNS": "200"},
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

            # MLflow against Tune's own record.
            runs = trial_runs(client, sweep_id)
            keys = {
                (r.data.params["placement"], r.data.params["dropout"], r.data.params["seed"]) for r in runs
            }
            assert len(runs) == len(keys) == 8  # one run per trial, none twice
            assert {r.info.status for r in runs} == {"FINISHED"}
            tune = tune_record(runs_dir / sweep_id, cluster.temp_root)
            for run in runs:
                history = client.get_metric_history(run.info.run_id, "val_accuracy")
                assert sorted(m.step for m in history) == list(range(1, EPOCHS + 1)), run.info.run_name
                params = run.data.params
                key = (params["placement"], float(params["dropout"]), int(params["seed"]))
                recorded = tune.get(key, {})
                assert sorted(recorded) == list(range(1, EPOCHS + 1)), (key, sorted(tune))
                for metric in history:  # the same values Tune saw (a retry repeats them exactly)
                    assert metric.value == pytest.approx(recorded[metric.step], abs=1e-6), run.info.run_name
            assert any(r.data.tags["trial.attempts"] != "1" for r in runs)  # the faults did hit trials
            parent = client.get_run(find_sweep(client, sweep_id, with_spec=False).parent_run_id)
            assert parent.info.status == "FINISHED" and parent.data.tags["sweep.state"] == "finished"

            with service.client() as api:
                final = api.get(f"/v1/sweeps/{sweep_id}").json()
                assert final["status"] == "SUCCEEDED", final
                assert final["trials"]["finished"] == 8 and final["trials"]["running"] == 0
                report = api.get(f"/v1/sweeps/{sweep_id}/report")
                assert report.status_code == 200, report.text
        finally:
            service.stop()
