"""A sweep on a two-node Ray cluster with MLflow on PostgreSQL, started by the services/ scripts.

The compose topology from plain processes on loopback (cluster.py): a head and a second node with
token auth on (the second node's Python has every dependency but not the `sweep` package), an
`mlflow server` on a real PostgreSQL. Then: `sweep submit` and plain `ray job submit`, a node lost
mid-sweep (a trial on it continued from its checkpoint), the driver SIGKILLed after more than 50
trials started and resumed, the tracking server down for 20 s, and `sweep cancel`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from cluster import Driver, MlflowServer, RayCluster, cluster_without_sweep, wait_for
from mlflow.tracking import MlflowClient
from sweep_runs import running_trial_runs, trial_runs

from sweep.training.checkpoints import is_whole

pytestmark = pytest.mark.slow

SWEEP = [sys.executable, "-m", "sweep"]
RAY = str(Path(sys.executable).parent / "ray")
EPOCHS_LOST, EVERY_LOST = 20, 3  # the lost-node sweep's epochs and checkpoint interval


def start_cluster(root: Path) -> RayCluster:
    """A cluster of this test's own, like the session's `cluster`: head, and node1 without sweep."""
    return cluster_without_sweep(root).start()


def write_spec(folder: Path, name: str, *, seeds: int = 2, epochs: int = 3, **extra: Any) -> Path:
    """A small spec on a CSV file beside it (relative path): 2 placements x `seeds`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 6))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    rows = ["f0,f1,f2,f3,f4,f5,y"] + [
        ",".join(f"{v:.5f}" for v in row) + f",{t}" for row, t in zip(x, y, strict=True)
    ]
    (folder / "data" / "train.csv").write_text("\n".join(rows) + "\n")
    spec = {
        "name": name,
        "dataset": {"source": "csv", "path": "data/train.csv", "target": "y"},
        "model": {"hidden_units": [8], "activation": "relu"},
        "search": {
            "placement": ["before_activation", "none"],
            "dropout": [0.2],
            "optimizer": [{"name": "adam", "learning_rate": 0.01}],
            "seeds": seeds,
        },
        "training": {"epochs": epochs, "batch_size": 32},
        "tracking": {"experiment": "cluster-test"},
        **extra,
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def client_env(cluster: RayCluster, **extra: str) -> dict[str, str]:
    return {**os.environ, **cluster.env, "COLUMNS": "200", "SWEEP_TRACKING_PATIENCE_S": "120", **extra}


def sweep_cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    # cwd is never the repo root: Ray puts a driver's cwd on its workers' sys.path, which would hand
    # node1 the ./sweep folder and hide whether the package really travels with the job.
    return subprocess.run(
        [*SWEEP, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def sweep_id_in(output: str) -> str:
    found = re.search(r"sweep id\s+(\S+)", output)
    assert found, output[-3000:]
    return found.group(1)


def parents(client: MlflowClient, sweep_id: str) -> list[Any]:
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, f"tags.`sweep.id` = '{sweep_id}'", max_results=5000)
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


def running_children(client: MlflowClient, sweep_name: str, reported: bool = False) -> list[Any]:
    """RUNNING trial runs of the sweep named `sweep_name` (with an epoch recorded, if `reported`)."""
    return [
        r
        for r in running_trial_runs(client)
        if r.data.tags.get("sweep.id", "").startswith(sweep_name + "-") and (r.data.metrics or not reported)
    ]


def assert_complete(client: MlflowClient, sweep_id: str, trials: int, epochs: int) -> list[Any]:
    """One FINISHED run per trial, every epoch recorded once, the parent FINISHED."""
    runs = trial_runs(client, sweep_id)
    assert len(runs) == trials
    assert {r.info.status for r in runs} == {"FINISHED"}, [(r.info.run_name, r.info.status) for r in runs]
    keys = {(r.data.params["placement"], r.data.params["dropout"], r.data.params["seed"]) for r in runs}
    assert len(keys) == trials  # no trial twice
    for run in runs:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")]
        assert sorted(steps) == list(range(1, epochs + 1)), (run.info.run_name, steps)
    [parent] = parents(client, sweep_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["sweep.state"] == "finished"
    return runs


def test_sweep_submit_trains_on_both_nodes_one_without_the_package(
    cluster: RayCluster, tracking: MlflowServer, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path / "project", "submitted", seeds=2)
    env = client_env(cluster)
    args = ["submit", str(spec), "--address", cluster.dashboard_url, "--tracking-uri", tracking.url]
    done = sweep_cli(*args, "--runs-dir", str(tmp_path / "runs"), "--follow", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "job             SUCCEEDED" in done.stdout
    sweep_id = sweep_id_in(done.stdout)
    client = MlflowClient(tracking.url)
    runs = assert_complete(client, sweep_id, trials=4, epochs=3)
    nodes = cluster.node_ids()
    assert {r.data.tags["ray.node_id"] for r in runs} == set(nodes.values())  # both nodes trained
    for run in runs:
        assert run.data.tags["ray.hostname"] and int(run.data.tags["ray.pid"]) > 0
    [parent] = parents(client, sweep_id)
    assert parent.data.tags["ray.job_submission_id"] == f"sweep-{sweep_id}"
    # the data file travelled with the job and the sweep keeps its own copy beside spec.yaml
    assert (tmp_path / "runs" / sweep_id / "data" / "train.csv").is_file()

    # The same sweep id again: nothing new is launched, no second parent.
    again = sweep_cli(*args, "--sweep-id", sweep_id, env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "already submitted" in again.stdout
    assert len(parents(client, sweep_id)) == 1

    status = sweep_cli(
        "status",
        sweep_id,
        "--address",
        cluster.dashboard_url,
        env=env | {"MLFLOW_TRACKING_URI": tracking.url},
        cwd=tmp_path,
    )
    assert status.returncode == 0, status.stderr[-2000:]
    assert "SUCCEEDED" in status.stdout and "4 finished, 0 failed" in status.stdout
    logs = sweep_cli("logs", sweep_id, "--address", cluster.dashboard_url, env=env, cwd=tmp_path)
    assert logs.returncode == 0 and "submitted: 4 trials" in logs.stdout


def _file_builder(project: Path) -> dict[str, Any]:
    """A user's builder file beside the spec (models/net.py), and the spec's model section naming it."""
    (project / "models").mkdir(parents=True)
    (project / "models" / "net.py").write_text(
        "import keras\nfrom sweep.blocks import block\n\n"
        "def build(placement, dropout, input_shape, n_classes, width):\n"
        "    inputs = keras.Input(input_shape)\n"
        "    x = block(inputs, keras.layers.Dense(width), placement, dropout)\n"
        "    return keras.Model(inputs, keras.layers.Dense(n_classes, activation='softmax')(x))\n"
    )
    return {"kind": "python", "builder": "models/net.py:build", "args": {"width": 6}}


def test_a_file_builder_trains_on_both_nodes_one_without_sweep_or_the_file(
    cluster: RayCluster, tracking: MlflowServer, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    # 3 epochs as the sweep above: trials long enough that both 1-CPU nodes take some
    spec = write_spec(project, "builder-job", seeds=2, epochs=3, model=_file_builder(project))
    env = client_env(cluster)
    args = ["submit", str(spec), "--address", cluster.dashboard_url, "--tracking-uri", tracking.url]
    done = sweep_cli(*args, "--runs-dir", str(tmp_path / "runs"), "--follow", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sweep_id = sweep_id_in(done.stdout)
    runs = assert_complete(MlflowClient(tracking.url), sweep_id, trials=4, epochs=3)
    assert {r.data.tags["ray.node_id"] for r in runs} == set(cluster.node_ids().values())
    assert {r.data.tags["model.builder"].rsplit("/", 1)[-1] for r in runs} == {"net.py:build"}
    assert {r.data.tags["model.args"] for r in runs} == {'{"width": 6}'}
    (kept,) = (tmp_path / "runs" / sweep_id / "code").iterdir()  # for `sweep resume` later
    assert (kept / "net.py").is_file()


def test_plain_ray_job_submit_runs_the_readme_command(
    cluster: RayCluster, tracking: MlflowServer, tmp_path: Path
) -> None:
    # with a user's builder file: the job's driver ships it to the workers as `sweep run` does
    project = tmp_path / "project"
    spec = write_spec(project, "plain-job", seeds=1, model=_file_builder(project))
    runs_dir = tmp_path / "runs"
    done = subprocess.run(
        [
            RAY,
            "job",
            "submit",
            "--address",
            cluster.dashboard_url,
            "--working-dir",
            ".",
            "--",
            "sweep",
            "run",
            "spec.yaml",
            "--tracking-uri",
            tracking.url,
            "--runs-dir",
            str(runs_dir),
        ],
        env=client_env(cluster),
        cwd=spec.parent,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sweep_id = sweep_id_in(done.stdout)
    runs = assert_complete(MlflowClient(tracking.url), sweep_id, trials=2, epochs=3)
    assert {r.data.tags["model.builder"].rsplit("/", 1)[-1] for r in runs} == {"net.py:build"}


def test_the_driver_killed_after_50_trials_started_then_resumed(
    cluster: RayCluster, tracking: MlflowServer, tmp_path: Path
) -> None:
    # 4 placements x 2 dropout rates x 7 seeds = 56 one-epoch trials; the driver runs here.
    spec = write_spec(
        tmp_path / "project",
        "killed-driver",
        seeds=7,
        epochs=1,
        search={
            "placement": ["before_activation", "after_activation", "after_dropout", "none"],
            "dropout": [0.0, 0.3],
            "optimizer": [{"name": "adam", "learning_rate": 0.01}],
            "seeds": 7,
        },
    )
    env = client_env(cluster)
    runs_dir = tmp_path / "runs"
    common = ["--ray-address", cluster.address, "--tracking-uri", tracking.url, "--runs-dir", str(runs_dir)]
    driver = Driver([str(spec), *common], env=env, cwd=tmp_path)
    client = MlflowClient(tracking.url)
    try:
        sweep_id = driver.wait_for(
            lambda: next((p.name for p in runs_dir.glob("killed-driver-*")), None), 120, "sweep dir"
        )

        def started() -> int:
            try:
                return len(trial_runs(client, sweep_id)) > 50
            except Exception:
                return False

        driver.wait_for(started, 400, "51 trials started")
    finally:
        driver.kill()
    before = {r.info.run_id: r for r in trial_runs(client, sweep_id)}
    ended = {rid for rid, r in before.items() if r.info.status == "FINISHED"}
    assert len(before) > 50 and ended
    assert any(r.info.status == "RUNNING" for r in before.values()) or len(before) < 56

    # No --tracking-uri: resume finds the store the sweep recorded in its folder.
    resumed = sweep_cli(
        "resume",
        sweep_id,
        "--ray-address",
        cluster.address,
        "--runs-dir",
        str(runs_dir),
        env=env,
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    runs = assert_complete(client, sweep_id, trials=56, epochs=1)
    assert len(parents(client, sweep_id)) == 1
    assert ended <= {r.info.run_id for r in runs}  # no trial that had ended ran again


def test_the_tracking_server_down_for_20_s_loses_nothing(
    cluster: RayCluster, tracking: MlflowServer, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path / "project", "outage", seeds=4, epochs=12)
    env = client_env(cluster)
    driver = Driver(
        [
            str(spec),
            "--ray-address",
            cluster.address,
            "--tracking-uri",
            tracking.url,
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        env=env,
        cwd=tmp_path,
    )
    client = MlflowClient(tracking.url)
    try:
        driver.wait_for(lambda: running_children(client, "outage"), 300, "a trial running")
        tracking.stop()
        time.sleep(20)
        tracking.start()
        returncode = driver.finish(timeout=600)
    finally:
        driver.kill()
    out = driver.output
    assert returncode == 0, out[-3000:]
    assert "Traceback" not in out
    assert "tracking server unreachable; retrying" in out  # the outage did hit the sweep's writes
    assert "View run" not in out  # MLflow's per-run lines stay out of the output
    assert_complete(client, sweep_id_in(out), trials=8, epochs=12)


def test_sweep_cancel_stops_the_job_and_closes_every_run(
    cluster: RayCluster, tracking: MlflowServer, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path / "project", "cancelled", seeds=4, epochs=200)
    env = client_env(cluster)
    submitted = sweep_cli(
        "submit",
        str(spec),
        "--address",
        cluster.dashboard_url,
        "--tracking-uri",
        tracking.url,
        "--runs-dir",
        str(tmp_path / "runs"),
        env=env,
        cwd=tmp_path,
    )
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    sweep_id = sweep_id_in(submitted.stdout)
    client = MlflowClient(tracking.url)
    wait_for(lambda: running_children(client, "cancelled"), 300, "a trial running")
    cancelled = sweep_cli("cancel", sweep_id, "--address", cluster.dashboard_url, env=env, cwd=tmp_path)
    assert cancelled.returncode == 0, cancelled.stdout[-2000:] + cancelled.stderr[-2000:]
    assert "STOPPED" in cancelled.stdout
    runs = trial_runs(client, sweep_id)
    assert runs and not [r for r in runs if r.info.status == "RUNNING"]
    assert "KILLED" in {r.info.status for r in runs}
    [parent] = parents(client, sweep_id)
    assert parent.info.status == "KILLED" and parent.data.tags["sweep.state"] == "interrupted"


def _on_node_with_checkpoint(client: MlflowClient, node_id: str, runs_dir: Path) -> Any:
    """A RUNNING trial run on `node_id` whose Tune trial has a whole checkpoint in the shared storage."""
    for run in running_children(client, "lost-node", reported=True):
        trial_id = run.data.tags.get("trial.id")
        if run.data.tags.get("ray.node_id") != node_id or not trial_id:
            continue
        if any(is_whole(p) for p in runs_dir.glob(f"*/*/{trial_id}/checkpoint_*")):
            return run
    return None


def test_a_node_lost_mid_sweep_costs_retries_not_results(tracking: MlflowServer, tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "cluster")
    runs_dir = tmp_path / "runs"
    try:
        lost = cluster.node_ids()["node1"]
        # epochs long enough to catch a trial between its first checkpoint and its end
        training = {
            "epochs": EPOCHS_LOST,
            "batch_size": 2,
            "steps_per_execution": 1,
            "checkpoint_every": EVERY_LOST,
        }
        spec = write_spec(tmp_path / "project", "lost-node", seeds=4, training=training)
        stores = ["--tracking-uri", tracking.url, "--runs-dir", str(runs_dir)]
        driver = Driver(
            [str(spec), "--ray-address", cluster.address, *stores], env=client_env(cluster), cwd=tmp_path
        )
        client = MlflowClient(tracking.url)
        try:
            caught = driver.wait_for(
                lambda: _on_node_with_checkpoint(client, lost, runs_dir),
                300,
                "a trial on node1 with a checkpoint",
                every=0.3,
            )
            cluster.kill_node(1)
            returncode = driver.finish(timeout=600)
        finally:
            driver.kill()
        out = driver.output
        assert returncode == 0, out[-3000:]
        runs = assert_complete(client, sweep_id_in(out), trials=8, epochs=EPOCHS_LOST)
        retried = {r.info.run_id: r for r in runs if r.data.tags["trial.attempts"] != "1"}
        assert caught.info.run_id in retried, "the trial caught on node1 recorded no retry"
        for run in retried.values():
            assert run.data.tags["trial.attempt_1.error"]
            # the lost attempt names node1: from its epochs, or from Ray's actor table (none reported)
            assert run.data.tags.get("trial.attempt_1.node_id") == lost, run.data.tags
            assert run.data.tags["ray.node_id"] != lost  # the retry ran on the surviving node
            # where the retry began: its checkpoint's epoch (written on node1, read on node0 from
            # the storage both see), or 0 when node1 went before the trial's first checkpoint
            began = run.data.tags[f"trial.attempt_{run.data.tags['trial.attempts']}.resumed_from_epoch"]
            assert int(began) % EVERY_LOST == 0 and int(began) < EPOCHS_LOST, run.data.tags
        kept = retried[caught.info.run_id].data.tags
        assert int(kept[f"trial.attempt_{kept['trial.attempts']}.resumed_from_epoch"]) >= EVERY_LOST
        assert "RETRYING" in out
        # the continued trial ends with the final metrics of the same trial trained straight through
        again = sweep_cli("reproduce", caught.info.run_id, *stores, env=client_env(cluster), cwd=tmp_path)
        assert again.returncode == 0 and "identical" in again.stdout, (
            again.stdout[-3000:] + again.stderr[-2000:]
        )
    finally:
        cluster.stop()
