"""The REST service for real: `sweep serve` on loopback in front of a token-auth two-node Ray cluster
and an `mlflow server` on PostgreSQL (tests/integration/cluster.py), driven with httpx.

A quick sweep followed through its events to SUCCEEDED with its trials and report; an idempotent
retry; a cancel (CANCELLED, no run left RUNNING); the service restarted mid-sweep and after it; a
sweep whose Ray job is gone reconciled to FAILED; auth and hostile bodies on the wire.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from api_server import AUTH, TOKEN, ApiServer, serve_env, status, until_ended, write_data
from cluster import MlflowServer, RayCluster, wait_for
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


def spec(name: str, epochs: int = 2, **extra: Any) -> dict[str, Any]:
    """2 trials (2 placements x 1 seed) on the CSV in the data root."""
    return {
        "name": name,
        "dataset": {"source": "csv", "path": "sets/train.csv", "target": "y"},
        "model": {"hidden_units": [8]},
        "search": {
            "placement": ["before_activation", "none"],
            "dropout": [0.1],
            "optimizer": [{"name": "adam", "learning_rate": 0.01}],
            "seeds": 1,
        },
        "training": {"epochs": epochs, "batch_size": 32},
        "tracking": {"experiment": "api-test"},
        **extra,
    }


def follow(api: httpx.Client, sweep_id: str, **headers: str) -> list[tuple[str | None, str | None, Any]]:
    """(id, kind, data) of each event of the sweep's stream, up to its `end`."""
    events = []
    with api.stream("GET", f"/v1/sweeps/{sweep_id}/events", headers=headers, timeout=300) as stream:
        assert stream.status_code == 200
        event_id = kind = None
        for line in stream.iter_lines():
            if line.startswith("id: "):
                event_id = line.removeprefix("id: ")
            elif line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((event_id, kind, json.loads(line.removeprefix("data: "))))
                if kind == "end":
                    break
    return events


def open_runs(tracking: str, parent_run_id: str) -> list[str]:
    client = MlflowClient(tracking)
    run = client.get_run(parent_run_id)
    children = client.search_runs(
        [run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_run_id}'", max_results=1000
    )
    return [r.info.run_id for r in [run, *children] if r.info.status == "RUNNING"]


@pytest.fixture(scope="module")
def service_env(
    tmp_path_factory: pytest.TempPathFactory, tracking: MlflowServer, cluster: RayCluster
) -> dict[str, str]:
    root = tmp_path_factory.mktemp("api-data")
    write_data(root / "sets")
    (root / "escape.csv").symlink_to(write_data(tmp_path_factory.mktemp("outside")))
    return serve_env(
        cluster,
        tracking.url,
        root,
        SWEEP_EVENTS_POLL_S="0.5",
        SWEEP_MAX_TRIALS="50",
        SWEEP_BODY_TIMEOUT_S="2",
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="2",
    )


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, service_env: dict[str, str]) -> Iterator[ApiServer]:
    with ApiServer(tmp_path_factory.mktemp("api-serve"), service_env, script=True) as server:
        yield server


def test_quick_sweep_from_post_through_events_to_report(service: ApiServer, tracking: MlflowServer) -> None:
    with service.client(**{"Idempotency-Key": "ci-run-1"}) as api:
        posted = api.post("/v1/sweeps", json=spec("quick"))
        assert posted.status_code == 202, posted.text
        sweep_id = posted.json()["id"]
        assert posted.headers["location"] == f"/v1/sweeps/{sweep_id}"
        retried = api.post("/v1/sweeps", json=spec("quick"))
        assert (retried.status_code, retried.json()["id"]) == (200, sweep_id)

        events = follow(api, sweep_id)
        assert [(i, k) for i, k, _ in events] == [("1", "trial"), ("2", "trial"), ("3", "end")], events
        assert {e["placement"] for _, k, e in events if k == "trial"} == {"before_activation", "none"}
        final = events[-1][2]
        assert final["status"] == "SUCCEEDED"
        # A reconnect (EventSource sends the last id it saw) gets the rest, the same events.
        assert follow(api, sweep_id, **{"Last-Event-ID": "1"}) == events[1:]
        assert api.get(f"/v1/sweeps/{sweep_id}/events", headers={"Last-Event-ID": "3"}).status_code == 204

        # The report follows the parent run's end: the job ends after it.
        done = until_ended(api, sweep_id)
        assert done["status"] == "SUCCEEDED", done
        assert done["trials"] == {"finished": 2, "failed": 0, "running": 0, "total": 2}
        assert done["best"] is not None and done["ray_job_id"] == f"sweep-{sweep_id}"
        assert done["mlflow_url"] == (
            f"{tracking.url}/#/experiments/{done['experiment_id']}/runs/{done['parent_run_id']}"
            "?workflowType=machine_learning"
        )
        trials = api.get(f"/v1/sweeps/{sweep_id}/trials").json()["trials"]
        assert sorted(t["status"] for t in trials) == ["FINISHED", "FINISHED"]
        assert api.get(f"/v1/sweeps/{sweep_id}/trials", params={"format": "csv"}).text.count("\n") == 3
        analysis = api.get(f"/v1/sweeps/{sweep_id}/report").json()
        assert analysis["n_trials"] == 2
        assert api.get(f"/v1/sweeps/{sweep_id}/report", params={"format": "md"}).text.startswith("# ")
        assert "<html" in api.get(f"/v1/sweeps/{sweep_id}/report", params={"format": "html"}).text
        assert api.get(f"/v1/sweeps/{sweep_id}/logs", params={"tail": 50}).status_code == 200
        listed = api.get("/v1/sweeps", params={"status": "SUCCEEDED"}).json()["items"]
        assert sweep_id in [s["id"] for s in listed]


def test_cancel_stops_the_job_and_leaves_no_run_running(service: ApiServer, tracking: MlflowServer) -> None:
    with service.client() as api:
        sweep_id = api.post("/v1/sweeps", json=spec("cancelled", epochs=500)).json()["id"]
        wait_for(lambda: (status(api, sweep_id).get("trials") or {}).get("running"), 180, "trials running")
        cancelled = api.post(f"/v1/sweeps/{sweep_id}/cancel")
        assert cancelled.status_code == 202, cancelled.text
        done = until_ended(api, sweep_id, timeout=120)
        assert done["status"] == "CANCELLED", done
        assert open_runs(tracking.url, done["parent_run_id"]) == []
        assert api.post(f"/v1/sweeps/{sweep_id}/cancel").status_code == 409
        assert api.get(f"/v1/sweeps/{sweep_id}/report").status_code == 404


def test_a_restarted_service_finds_every_sweep_with_its_true_status(service: ApiServer) -> None:
    with service.client() as api:
        sweep_id = api.post("/v1/sweeps", json=spec("restarted", epochs=40)).json()["id"]
        wait_for(lambda: status(api, sweep_id)["status"] == "RUNNING", 120, "sweep running")
    assert service.stop() is not None
    service.start()
    with service.client() as api:
        assert status(api, sweep_id)["status"] in ("RUNNING", "SUCCEEDED")  # the job ran on meanwhile
        assert until_ended(api, sweep_id)["status"] == "SUCCEEDED"
    service.stop()
    service.start()
    with service.client() as api:
        assert status(api, sweep_id)["status"] == "SUCCEEDED"
        every = {s["id"]: s["status"] for s in api.get("/v1/sweeps", params={"limit": 200}).json()["items"]}
        assert every[sweep_id] == "SUCCEEDED"
        assert "RUNNING" not in every.values() and "QUEUED" not in every.values(), every


def test_a_sweep_whose_ray_job_is_gone_turns_failed_and_its_runs_close(
    service: ApiServer, tracking: MlflowServer
) -> None:
    # What a head restarted without GCS fault tolerance leaves: a RUNNING parent run (and trial)
    # that names a Ray job the cluster does not know.
    client = MlflowClient(tracking.url)
    experiment = client.get_experiment_by_name("api-test")
    assert experiment is not None
    tags = {"sweep.id": "ghost-1", "sweep.name": "ghost", "sweep.state": "running"}
    parent = client.create_run(
        experiment.experiment_id, tags={**tags, "ray.job_submission_id": "sweep-ghost-1"}
    )
    child = client.create_run(
        experiment.experiment_id, tags={"sweep.id": "ghost-1", "mlflow.parentRunId": parent.info.run_id}
    )
    with service.client() as api:
        ghost = status(api, "ghost-1")
    assert ghost["status"] == "FAILED"
    assert "no longer exists" in ghost["reason"]
    assert client.get_run(parent.info.run_id).info.status == "FAILED"
    assert client.get_run(child.info.run_id).info.status == "FAILED"
    assert client.get_run(parent.info.run_id).data.tags["sweep.state"] == "failed"


def test_auth_on_the_wire(service: ApiServer) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token"}):
        response = httpx.get(f"{service.url}/v1/sweeps", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
    assert httpx.get(f"{service.url}/v1/sweeps", headers=AUTH).status_code == 200
    assert httpx.get(f"{service.url}/healthz").status_code == 200
    assert TOKEN not in service.log()


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (json.dumps({"name": 3, "training": {"epochs": "many"}}), "application/json"),
        (json.dumps({"name": "x", "surprise": True}), "application/json"),
        (json.dumps({"name": "x", "search": {"seeds": 10_000}}), "application/json"),
        (json.dumps({"name": "x", "search": {"dropout": [0.1] * 20_000}}), "application/json"),
        ("{{{{", "application/json"),
        ("", "application/json"),
        (b"\xc3\x28\xff", "application/yaml"),
        (
            yaml.safe_dump(spec("x") | {"dataset": {"source": "csv", "path": "../x.csv", "target": "y"}}),
            "application/yaml",
        ),
        (
            json.dumps(spec("x") | {"dataset": {"source": "csv", "path": "escape.csv", "target": "y"}}),
            "application/json",
        ),
        (
            json.dumps(spec("x") | {"dataset": {"source": "csv", "path": "/etc/hosts", "target": "y"}}),
            "application/json",
        ),
        (json.dumps(spec("x") | {"tracking": {"uri": "http://127.0.0.1:1"}}), "application/json"),
        ("x" * 300_000, "application/json"),
    ],
)
def test_hostile_bodies_are_refused_with_a_4xx(
    service: ApiServer, content: str | bytes, content_type: str
) -> None:
    with service.client() as api:
        response = api.post("/v1/sweeps", content=content, headers={"Content-Type": content_type})
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_a_body_trickling_in_is_cut_off_with_408(service: ApiServer) -> None:
    """A client that declares a body and never finishes it holds the connection for
    SWEEP_BODY_TIMEOUT_S (2 s here), then gets a 408 problem, not a hung worker."""
    import socket

    head = (
        "POST /v1/sweeps HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as conn:
        conn.sendall(head.encode() + b'{"name": ')
        started = time.monotonic()
        answer = ""
        while "not sent within" not in answer and (chunk := conn.recv(4096)):
            answer += chunk.decode(errors="replace")
    assert answer.startswith("HTTP/1.1 408"), answer
    assert "application/problem+json" in answer and "not sent within 2 s" in answer
    assert time.monotonic() - started < 25


def test_a_bounded_load_gets_no_error_and_one_sweep_per_idempotency_key(service: ApiServer) -> None:
    """120 requests from 10 concurrent clients: submits (4 keys, each sent 5 times, racing each
    other), status polls, lists, trials and reports. No 5xx, no transport error, no traceback; the
    sweeps launched are exactly the distinct keys sent."""
    from api_load import plan, run_load

    one_trial = spec("load", epochs=1) | {
        "search": {"placement": ["none"], "dropout": [0.0], "optimizer": [{"name": "adam"}], "seeds": 1}
    }
    keys = [f"load-{i}" for i in range(4)]
    requests = plan(keys, resends=5, polls=60, lists=10)
    result = run_load(service.url, TOKEN, one_trial, requests, clients=10)
    assert result.errors == [], result.errors[:5]
    summary = result.summary()
    assert sum(e["requests"] for e in summary["endpoints"].values()) == len(requests) == 120
    submits = summary["endpoints"]["submit"]["statuses"]
    assert submits == {202: 4, 200: 16}, summary  # one launch per key; the resends find it
    assert all(len(ids) == 1 for ids in result.sweeps.values()) and len(result.sweeps) == 4
    for kind in ("status", "list", "trials", "report"):  # 404 before a submit lands, 409 report while running
        assert set(summary["endpoints"][kind]["statuses"]) <= {200, 404, 409}, summary
    with service.client() as api:  # leave the cluster free for the next test
        for (sweep_id,) in result.sweeps.values():
            assert api.post(f"/v1/sweeps/{sweep_id}/cancel").status_code in (202, 409)
        for (sweep_id,) in result.sweeps.values():
            assert until_ended(api, sweep_id)["status"] in ("CANCELLED", "SUCCEEDED")
