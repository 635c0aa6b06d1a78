"""Admission on a real `sweep serve` with its own head and one sweep slot (issue 23): one sweep runs,
the others wait QUEUED in submission order, a cancelled one never runs, the rest succeed in turn."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from api_server import ApiServer, status, until_ended
from cluster import wait_for
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

TOKEN = "queue-token-0123456789"


def spec(name: str) -> dict[str, object]:
    return {
        "name": name,
        "dataset": {"source": "iris"},
        "model": {"hidden_units": [8]},
        "search": {"placement": ["none"], "dropout": [0.0], "seeds": 2},
        "training": {"epochs": 2},
    }


def test_one_slot_runs_one_sweep_and_queues_the_rest_in_order(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWEEP_", "RAY_", "MLFLOW_TRACKING"))}
    env |= {
        "SWEEP_RUNS_DIR": str(tmp_path / "runs"),
        "SWEEP_RAY_CPUS": "2",
        "SWEEP_API_TOKEN": TOKEN,
        "SWEEP_MAX_RUNNING_SWEEPS": "1",
    }
    with ApiServer(tmp_path / "serve", env) as server, server.client(Authorization=f"Bearer {TOKEN}") as api:
        ids = []
        for name in ("first", "second", "third"):
            posted = api.post("/v1/sweeps", json=spec(name))
            assert posted.status_code == 202, posted.text
            ids.append(posted.json()["id"])
        first, second, third = ids
        wait_for(lambda: status(api, first)["status"] == "RUNNING", 120, "the first sweep runs")
        waiting = [status(api, i) for i in (second, third)]
        assert [s["status"] for s in waiting] == ["QUEUED", "QUEUED"], waiting
        assert [s["queue_position"] for s in waiting] == [1, 2], waiting
        assert all(s["parent_run_id"] for s in waiting)  # recorded in MLflow at submit time
        listed = api.get("/v1/sweeps", params={"status": "QUEUED"}).json()["items"]
        assert [s["id"] for s in listed] == [second, third]
        ready = api.get("/readyz").json()
        assert ready["sweeps"] == {"running": 1, "queued": 2}, ready

        cancelled = api.post(f"/v1/sweeps/{second}/cancel")
        assert cancelled.status_code == 202, cancelled.text
        assert cancelled.json()["status"] == "CANCELLED"
        assert status(api, third)["status"] == "QUEUED"

        done = [until_ended(api, i, timeout=600) for i in (first, third)]
        assert [d["status"] for d in done] == ["SUCCEEDED", "SUCCEEDED"], done
        gone = status(api, second)
        assert gone["status"] == "CANCELLED" and gone["trials"]["finished"] == 0, gone

    store = MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    runs = {d["id"]: store.get_run(d["parent_run_id"]) for d in (*done, gone)}
    assert runs[second].info.status == "KILLED"
    assert runs[second].data.tags["sweep.state"] == "cancelled"
    experiments = [runs[second].info.experiment_id]
    # Created at submit time by the service, beside the local store as a driver would have made it.
    location = store.get_experiment(experiments[0]).artifact_location
    assert location == (tmp_path / "runs" / "mlartifacts").resolve().as_uri()
    children = store.search_runs(experiments, f"tags.`mlflow.parentRunId` = '{gone['parent_run_id']}'")
    assert children == []  # it never ran a trial
    # The third started only once the first had ended: one slot.
    third_trials = store.search_runs(experiments, f"tags.`mlflow.parentRunId` = '{done[1]['parent_run_id']}'")
    assert len(third_trials) == 2
    assert min(r.info.start_time for r in third_trials) >= runs[first].info.end_time
