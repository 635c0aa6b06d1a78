"""The harness in cluster.py: PostgreSQL + MLflow server, and a token-auth Ray cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from cluster import MlflowServer, PostgresServer, RayCluster, mlflow_job_runner

pytestmark = pytest.mark.slow

PROBE_SWEEP_ON_NODE = """
import os, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

@ray.remote(num_cpus=1)
def import_sweep():
    try:
        import sweep
    except ImportError as e:
        return repr(e)
    return "imported " + sweep.__file__

ray.init(log_to_driver=False)
pin = NodeAffinitySchedulingStrategy(os.environ["NODE_ID"], soft=False)
print(ray.get(import_sweep.options(scheduling_strategy=pin).remote()))
"""


def test_mlflow_on_postgres_keeps_runs_across_a_restart(postgres: PostgresServer, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    with MlflowServer(postgres.create_database("harness"), tmp_path / "artifacts") as server:
        # MLflow's job runner (GenAI scorers, trace roll-ups) stays off, as start-mlflow.sh says
        serving = server.processes()
        assert serving and not mlflow_job_runner(serving), serving
        client = MlflowClient(server.url)
        run = client.create_run(client.create_experiment("harness"))
        client.log_metric(run.info.run_id, "loss", 0.5)
        client.log_text(run.info.run_id, "hello", "note.txt")
        port = server.port

        server.stop()
        assert not server.healthy()
        server.start()

        assert server.port == port
        assert client.get_run(run.info.run_id).data.metrics == {"loss": 0.5}
        assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["note.txt"]


def test_cluster_comes_up_with_every_node(cluster: RayCluster) -> None:
    assert set(cluster.node_ids()) == {"head", "node1"}


def test_cluster_refuses_clients_without_the_token(cluster: RayCluster) -> None:
    jobs = f"{cluster.dashboard_url}/api/jobs/"
    assert requests.get(jobs, timeout=10).status_code == 401
    authorized = {"Authorization": f"Bearer {cluster.token}"}
    assert requests.get(jobs, headers=authorized, timeout=10).status_code == 200

    no_token = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH_")}
    driver = subprocess.run(
        [sys.executable, "-c", "import ray; ray.init(log_to_driver=False)"],
        # One connection attempt instead of 20 s of retries.
        env={**no_token, "RAY_ADDRESS": cluster.address, "RAY_gcs_server_port_wait_time_s": "1"},
        cwd=cluster.tmpdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert driver.returncode != 0
    assert "InvalidAuthToken" in driver.stderr


def test_node_started_with_python_without_sweep_cannot_import_it(cluster: RayCluster) -> None:
    ids = cluster.node_ids()
    assert "ModuleNotFoundError" in cluster.run_client(PROBE_SWEEP_ON_NODE, NODE_ID=ids["node1"])
    assert "imported" in cluster.run_client(PROBE_SWEEP_ON_NODE, NODE_ID=ids["head"])


def test_killed_node_is_declared_dead(cluster: RayCluster) -> None:
    # Last: it takes node1 away from the session's cluster (the next module's `cluster` restarts it).
    cluster.kill_node(1)
    assert set(cluster.wait_nodes(1, timeout=20)) == {"head"}
