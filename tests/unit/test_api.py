"""The REST service's HTTP layer over an in-memory stand-in for Ray and MLflow: routes, auth,
errors as problem+json, the posted spec's rules, the status mapping and the settings' checks."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fake_sweeps import TOKEN, FakeSweeps, job, parent
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.api.app import create_app
from services.api.problems import TooMany
from services.api.queue import RETRY_AFTER_S, SUBMIT_RETRY_AFTER_S, check_room
from services.api.serve import ServeError, check
from services.api.settings import Settings, is_loopback
from services.api.states import GONE, SweepState, status_of
from services.api.sweeps import sweep_id_for_key
from sweep.results import TRIAL_COLUMNS, SweepProgress, mlflow_run_url
from sweep.spec import parse_spec

SPEC = {
    "name": "tiny",
    "dataset": {"source": "iris"},
    "search": {"placement": ["none"], "dropout": [0.0], "seeds": 2},
    "training": {"epochs": 2},
}


@pytest.fixture
def fake() -> FakeSweeps:
    sweeps = FakeSweeps()
    progress = SweepProgress(parent("done").record, 2, 0, 0, 0.9, ())
    sweeps.states["done"] = SweepState(
        "done", "SUCCEEDED", None, job("done", "SUCCEEDED"), parent("done", "FINISHED"), progress
    )
    sweeps.states["live"] = SweepState("live", "RUNNING", None, job("live"), parent("live"))
    return sweeps


def client_for(fake: FakeSweeps, **settings: Any) -> TestClient:
    values = {"ray_address": "http://ray", "tracking_uri": "http://mlflow:5000", **settings}
    return TestClient(create_app(Settings(**values), sweeps=fake), raise_server_exceptions=False)


@pytest.fixture
def api(fake: FakeSweeps) -> TestClient:
    return client_for(fake)


# --- the resources ------------------------------------------------------------------------------


def test_post_json_spec_answers_202_with_location_and_links(api: TestClient) -> None:
    response = api.post("/v1/sweeps", json=SPEC)
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/sweeps/{body['id']}" == body["links"]["self"]
    assert body["status"] == "QUEUED" and body["ray_job_id"] == f"sweep-{body['id']}"
    assert body["links"]["report"].endswith("/report")


def test_post_yaml_spec_is_read_like_json(api: TestClient, fake: FakeSweeps) -> None:
    text = "name: tiny\ndataset: {source: iris}\ntraining: {epochs: 2}\n"
    response = api.post("/v1/sweeps", content=text, headers={"Content-Type": "application/yaml"})
    assert response.status_code == 202, response.text
    assert fake.submitted[0][0].training.epochs == 2


def test_idempotency_key_returns_the_same_sweep(api: TestClient) -> None:
    headers = {"Idempotency-Key": "job-42"}
    first = api.post("/v1/sweeps", json=SPEC, headers=headers)
    again = api.post("/v1/sweeps", json=SPEC, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"] == sweep_id_for_key(parse_spec(SPEC), "job-42")


def test_sweep_id_for_key_is_the_name_and_a_hash_of_the_key() -> None:
    spec = parse_spec(SPEC)
    assert sweep_id_for_key(spec, "k") == sweep_id_for_key(spec, "k")
    assert sweep_id_for_key(spec, "k") != sweep_id_for_key(spec, "k2")
    assert sweep_id_for_key(spec, "k").startswith("tiny-") and len(sweep_id_for_key(spec, "k")) == 17


def test_get_sweep_shows_counts_best_and_an_mlflow_link_on_the_runs_view(api: TestClient) -> None:
    body = api.get("/v1/sweeps/done").json()
    assert body["status"] == "SUCCEEDED"
    assert body["trials"] == {"finished": 2, "failed": 0, "running": 0, "total": 2}
    assert body["best"] == 0.9 and body["parent_run_id"] == "run123"
    assert (
        body["mlflow_url"] == "http://mlflow:5000/#/experiments/7/runs/run123?workflowType=machine_learning"
    )


def test_get_sweep_answers_each_new_read_not_the_last_answer(api: TestClient, fake: FakeSweeps) -> None:
    first = api.get("/v1/sweeps/live")
    assert first.headers["content-type"] == "application/json"
    assert api.get("/v1/sweeps/live").content == first.content
    fake.states["live"] = SweepState("live", "SUCCEEDED", None, job("live", "SUCCEEDED"), parent("live"))
    assert api.get("/v1/sweeps/live").json()["status"] == "SUCCEEDED"


def test_mlflow_ui_url_setting_replaces_the_tracking_uri_in_links(fake: FakeSweeps) -> None:
    api = client_for(fake, mlflow_ui_url="http://localhost:5000/")
    assert (
        api.get("/v1/sweeps/done").json()["mlflow_url"].startswith("http://localhost:5000/#/experiments/7/")
    )


def test_list_is_newest_first_filtered_and_paginated(api: TestClient, fake: FakeSweeps) -> None:
    for i in range(3):
        fake.states[f"s{i}"] = SweepState(f"s{i}", "FAILED", "x", job(f"s{i}", "FAILED"), None)
    page = api.get("/v1/sweeps", params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next"] == "/v1/sweeps?limit=2&offset=2"
    second = api.get(page["next"]).json()
    last = api.get(second["next"]).json()
    assert len(last["items"]) == 1 and last["next"] is None
    assert len({s["id"] for p in (page, second, last) for s in p["items"]}) == 5
    failed = api.get("/v1/sweeps", params={"status": "FAILED"}).json()["items"]
    assert {s["id"] for s in failed} == {"s0", "s1", "s2"}
    assert api.get("/v1/sweeps", params={"status": "DONE"}).status_code == 422


def test_trials_as_json_and_csv(api: TestClient) -> None:
    body = api.get("/v1/sweeps/done/trials").json()
    assert body["trials"][0]["run_id"] == "r1" and body["trials"][0]["final_val_accuracy"] is None
    csv = api.get("/v1/sweeps/done/trials", params={"format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].split(",") == TRIAL_COLUMNS


def test_report_formats_and_409_while_running(api: TestClient) -> None:
    assert api.get("/v1/sweeps/done/report").json() == {"best_placement": "none"}
    md = api.get("/v1/sweeps/done/report", params={"format": "md"})
    assert md.text == "# report" and md.headers["content-type"].startswith("text/markdown")
    assert (
        api.get("/v1/sweeps/done/report", params={"format": "html"})
        .headers["content-type"]
        .startswith("text/html")
    )
    running = api.get("/v1/sweeps/live/report")
    assert running.status_code == 409 and running.headers["content-type"] == "application/problem+json"


def test_logs_are_plain_text(api: TestClient) -> None:
    response = api.get("/v1/sweeps/live/logs", params={"tail": 2})
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "line 8\nline 9\n"


def test_events_stream_trial_ends_then_the_end(api: TestClient) -> None:
    with api.stream("GET", "/v1/sweeps/done/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    blocks = [b for b in text.split("\n\n") if b]
    assert blocks[0].startswith("id: 1\nevent: trial\ndata: ")
    assert blocks[1].startswith(":")  # a keep-alive comment between polls
    assert blocks[2].startswith("id: 2\nevent: end\n") and '"status": "SUCCEEDED"' in blocks[2]


def test_events_resume_after_the_last_event_id_header_or_query(api: TestClient) -> None:
    with api.stream("GET", "/v1/sweeps/done/events", headers={"Last-Event-ID": "1"}) as response:
        text = "".join(response.iter_text())
    assert "event: trial" not in text and "id: 2\nevent: end\n" in text
    # EventSource reconnects to the URL it opened: the header it adds wins over the query.
    headers = {"Last-Event-ID": "0"}
    with api.stream("GET", "/v1/sweeps/done/events?last_event_id=1", headers=headers) as response:
        assert "id: 1\nevent: trial\n" in "".join(response.iter_text())
    with api.stream("GET", "/v1/sweeps/done/events?last_event_id=1") as response:
        assert "event: trial" not in "".join(response.iter_text())


def test_events_after_the_end_answer_204_so_eventsource_stops(api: TestClient) -> None:
    response = api.get("/v1/sweeps/done/events", headers={"Last-Event-ID": "2"})
    assert response.status_code == 204 and response.content == b""


@pytest.mark.parametrize("value", ["x", "-1", "1.5", "1 2", "99999999999"])
def test_a_malformed_last_event_id_is_a_422_problem(api: TestClient, value: str) -> None:
    for response in (
        api.get("/v1/sweeps/done/events", headers={"Last-Event-ID": value}),
        api.get("/v1/sweeps/done/events", params={"last_event_id": value}),
    ):
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "last_event_id" in response.text.lower() or "last-event-id" in response.text.lower()


def test_events_of_an_unknown_sweep_are_a_404_problem_not_a_stream(api: TestClient) -> None:
    response = api.get("/v1/sweeps/nope/events")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_cancel_answers_202_and_409_when_ended(api: TestClient) -> None:
    assert api.post("/v1/sweeps/live/cancel").status_code == 202
    assert api.post("/v1/sweeps/done/cancel").status_code == 409


def test_health_and_readiness_name_what_is_down(api: TestClient, fake: FakeSweeps) -> None:
    assert api.get("/healthz").json()["status"] == "ok"
    assert api.get("/readyz").status_code == 200
    fake.down = {"ray": "Ray Jobs API at http://ray: cannot answer"}
    ready = api.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"ray": "Ray Jobs API at http://ray: cannot answer", "mlflow": "ok"}
    assert ready.json()["sweeps"] is None  # not counted without Ray


def test_readyz_counts_the_sweeps_running_and_queued(api: TestClient) -> None:
    api.post("/v1/sweeps", json=SPEC)
    assert api.get("/readyz").json()["sweeps"] == {"running": 1, "queued": 1}


def test_a_queued_sweep_shows_its_place_and_lists_by_status(api: TestClient) -> None:
    sweep_id = api.post("/v1/sweeps", json=SPEC).json()["id"]
    assert api.get(f"/v1/sweeps/{sweep_id}").json()["queue_position"] == 1
    assert api.get("/v1/sweeps/live").json()["queue_position"] is None
    queued = api.get("/v1/sweeps", params={"status": "QUEUED"}).json()["items"]
    assert [s["id"] for s in queued] == [sweep_id]


def test_the_queue_has_room_below_its_limit_only() -> None:
    check_room(999, 1000)
    check_room(10**6, None)
    with pytest.raises(TooMany):
        check_room(1000, 1000)


def test_a_full_queue_answers_429_with_retry_after(fake: FakeSweeps) -> None:
    def full(spec: Any, idempotency_key: str | None = None) -> Any:
        check_room(2, 2)

    fake.submit = full  # type: ignore[method-assign]
    response = client_for(fake).post("/v1/sweeps", json=SPEC)
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == str(RETRY_AFTER_S)
    assert response.headers["content-type"] == "application/problem+json"
    assert "SWEEP_MAX_QUEUED_SWEEPS=2" in response.json()["detail"]


def test_posts_beyond_the_submit_limit_wait_their_turn_then_get_503_with_retry_after(
    fake: FakeSweeps,
) -> None:
    # 100 POSTs 32 at a time once exhausted MLflow's connection pool: 81 got 503 (docs/api.md#queue).
    staging, release = threading.Event(), threading.Event()
    staged = fake.submit

    def slow(spec: Any, idempotency_key: str | None = None) -> Any:
        staging.set()
        release.wait(30)
        return staged(spec, idempotency_key)

    fake.submit = slow  # type: ignore[method-assign]
    with client_for(fake, max_concurrent_submits=1, submit_wait_s=0.5) as api, ThreadPoolExecutor(1) as pool:
        first = pool.submit(api.post, "/v1/sweeps", json=SPEC, headers={"Idempotency-Key": "a"})
        assert staging.wait(30)
        waited = api.post("/v1/sweeps", json=SPEC, headers={"Idempotency-Key": "b"})
        assert api.get("/readyz").status_code == 200  # the service answers meanwhile
        release.set()
        assert first.result(timeout=30).status_code == 202
    assert waited.status_code == 503, waited.text
    assert waited.headers["retry-after"] == str(SUBMIT_RETRY_AFTER_S)
    assert "without a turn to submit" in waited.json()["detail"]
    assert [key for _, key in fake.submitted] == ["a"]  # nothing staged for the refused one


# --- errors -------------------------------------------------------------------------------------


def test_unknown_sweep_and_route_are_problems(api: TestClient) -> None:
    for path in ("/v1/sweeps/nope", "/v1/nothing"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 404


def test_a_bad_id_is_refused_before_it_reaches_a_filter(api: TestClient) -> None:
    for bad in ("UPPER", "a'or'1", "-lead", "x" * 200):
        assert api.get(f"/v1/sweeps/{bad}").status_code == 422, bad


def test_an_unexpected_error_is_a_500_problem_without_a_traceback(fake: FakeSweeps) -> None:
    def explode(sweep_id: str, progress: bool = True) -> SweepState:
        raise ZeroDivisionError("secret internals")

    fake.get = explode  # type: ignore[method-assign]
    response = client_for(fake).get("/v1/sweeps/done")
    assert response.status_code == 500
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert response.json()["detail"].startswith("unexpected ZeroDivisionError")


def test_every_error_in_a_spec_is_located(api: TestClient) -> None:
    bad = {"name": 5, "search": {"dropout": [0.5, 1.5]}, "bogus": 1, "training": {"epochs": "x"}}
    response = api.post("/v1/sweeps", json=bad)
    assert response.status_code == 422
    errors = {e["loc"]: e["msg"] for e in response.json()["errors"]}
    assert {"name", "bogus", "training.epochs"} <= set(errors)
    assert errors["bogus"].startswith("unknown field")


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"", "application/json", 400),
        (b"   ", "application/yaml", 400),
        (b"{not json", "application/json", 400),
        (b"name: [unclosed", "application/yaml", 400),
        (b"\xff\xfe\x00bad", "application/json", 400),
        (b'"a string"', "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b"null", "application/json", 400),
        (b"name: tiny", "text/plain", 415),
        (b"a: &x [1]\nb: *x\n", "application/yaml", 400),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400),
        (b'{"name": "tiny", "search": {"seeds": 1' + b"0" * 5000 + b"}}", "application/json", 400),
        (b'{"name": "tiny", "search": {"dropout": "lots"}}', "application/json", 422),
        (b'{"name": "tiny", "search": {"seeds": -1}}', "application/json", 422),
        (b'{"name": "tiny", "model": {"hidden_units": [' + b"8," * 5000 + b"8]}}", "application/json", 422),
        (b'{"name": "tiny", "search": {"dropout": [' + b"0.1," * 3000 + b"0.1]}}", "application/json", 422),
        (b'{"name": "tiny", "tracking": {"uri": "http://elsewhere"}}', "application/json", 422),
        (b'{"name": "tiny", "search": {"seeds": 1}, "search": {"seeds": 50}}', "application/json", 400),
    ],
)
def test_hostile_bodies_are_4xx_problems(
    api: TestClient, fake: FakeSweeps, body: bytes, content_type: str, status: int
) -> None:
    response = api.post("/v1/sweeps", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert fake.submitted == []


def test_a_body_over_the_limit_is_413(fake: FakeSweeps) -> None:
    api = client_for(fake, max_body_bytes=2048)
    big = {"name": "tiny", "padding": "x" * 4096}
    assert api.post("/v1/sweeps", json=big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"name": "tiny", "x": "'
        for _ in range(10):
            yield b"y" * 1024
        yield b'"}'

    response = api.post("/v1/sweeps", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_a_spec_over_the_trial_limit_names_count_and_limit(fake: FakeSweeps) -> None:
    api = client_for(fake, max_trials=5)
    response = api.post(
        "/v1/sweeps", json=SPEC | {"search": {"placement": ["none"], "dropout": [0.0], "seeds": 6}}
    )
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert "6 trials" in error["msg"] and "at most 5" in error["msg"]


def write_csv(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.csv"
    path.write_text("a,y\n1,0\n2,1\n")
    return path


def csv_spec(path: str) -> dict[str, Any]:
    return {"name": "tiny", "dataset": {"source": "csv", "path": path, "target": "y"}}


def test_data_paths_resolve_inside_the_data_root_only(tmp_path: Path, fake: FakeSweeps) -> None:
    root = tmp_path / "data"
    inside = write_csv(root / "sets")
    outside = write_csv(tmp_path / "elsewhere")
    (root / "escape.csv").symlink_to(outside)
    api = client_for(fake, data_root=root)
    assert api.post("/v1/sweeps", json=csv_spec("sets/train.csv")).status_code == 202
    assert fake.submitted[-1][0].dataset.path == str(inside.resolve())
    assert api.post("/v1/sweeps", json=csv_spec(str(inside))).status_code == 200  # same sweep id: same spec
    for hostile in ("../elsewhere/train.csv", str(outside), "escape.csv", "sets/missing.csv", "/etc/passwd"):
        response = api.post("/v1/sweeps", json=csv_spec(hostile))
        assert response.status_code == 422, hostile
        assert response.json()["errors"][0]["loc"] == "dataset.path", hostile


def test_without_a_data_root_no_data_file_is_taken(api: TestClient) -> None:
    response = api.post("/v1/sweeps", json=csv_spec("train.csv"))
    assert response.status_code == 422
    assert "SWEEP_DATA_ROOT" in response.json()["errors"][0]["msg"]


# --- auth ---------------------------------------------------------------------------------------


def test_a_token_guards_every_v1_route_but_not_the_probes(fake: FakeSweeps) -> None:
    api = client_for(fake, api_token=SecretStr(TOKEN))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = api.get("/v1/sweeps", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert api.post("/v1/sweeps", json=SPEC, headers=headers).status_code == 401
    assert fake.submitted == []
    assert api.get("/v1/sweeps", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert api.get("/healthz").status_code == 200


def test_the_token_is_not_in_any_answer_or_the_openapi_document(fake: FakeSweeps) -> None:
    api = client_for(fake, api_token=SecretStr(TOKEN))
    assert TOKEN not in api.get("/v1/sweeps", headers={"Authorization": "Bearer x"}).text
    assert TOKEN not in api.get("/openapi.json").text


# --- status, settings, serve --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_status", "run_status", "job_id", "expected"),
    [
        ("PENDING", None, None, "QUEUED"),
        ("PENDING", "SCHEDULED", "sweep-x", "QUEUED"),  # waiting for a sweep slot
        ("PENDING", "KILLED", "sweep-x", "CANCELLED"),  # cancelled while queued: Ray skips it later
        ("RUNNING", "RUNNING", None, "RUNNING"),
        ("SUCCEEDED", "FINISHED", None, "SUCCEEDED"),
        ("STOPPED", "KILLED", None, "CANCELLED"),
        ("FAILED", "FAILED", None, "FAILED"),
        (None, "FINISHED", "sweep-x", "SUCCEEDED"),
        (None, "KILLED", "sweep-x", "CANCELLED"),
        (None, "FAILED", "sweep-x", "FAILED"),
        (None, "RUNNING", None, "RUNNING"),  # `sweep run` on some machine: no job to lose
        ("FAILED", "FINISHED", None, "SUCCEEDED"),  # its driver was killed, `sweep resume` finished it
        ("RUNNING", "FINISHED", None, "RUNNING"),  # the job still attaches the report
    ],
)
def test_status_from_the_job_else_the_parent_run(
    job_status: str | None, run_status: str | None, job_id: str | None, expected: str
) -> None:
    j = job("x", job_status) if job_status else None
    p = parent("x", run_status, job_id) if run_status else None
    assert status_of(j, p)[0] == expected


def test_a_running_parent_whose_job_is_gone_reads_failed_with_the_reason() -> None:
    assert status_of(None, parent("x", "RUNNING", "sweep-x")) == ("FAILED", GONE)


def test_mlflow_run_url_opens_the_runs_view_and_only_for_servers() -> None:
    url = mlflow_run_url("http://h:5000/", "3", "abc")
    assert url == "http://h:5000/#/experiments/3/runs/abc?workflowType=machine_learning"
    assert mlflow_run_url("sqlite:///runs/mlflow.db", "3", "abc") is None


def test_settings_read_sweep_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWEEP_MAX_TRIALS", "7")
    monkeypatch.setenv("SWEEP_API_TOKEN", TOKEN)
    settings = Settings()
    assert settings.max_trials == 7
    assert TOKEN not in repr(settings)


def test_serve_refuses_a_public_host_without_a_token() -> None:
    with pytest.raises(ServeError, match="SWEEP_API_TOKEN"):
        check(Settings(), "0.0.0.0")
    check(Settings(api_token=SecretStr(TOKEN)), "0.0.0.0")
    check(Settings(), "127.0.0.1")
    with pytest.raises(ServeError, match="too short"):
        check(Settings(api_token=SecretStr("short")), "127.0.0.1")


def test_serve_needs_a_tracking_server_with_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ServeError, match="SWEEP_TRACKING_URI"):
        check(Settings(ray_address="http://head:8265"), "127.0.0.1")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False), ("example.org", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_openapi_declares_the_spec_and_problem_answers(api: TestClient) -> None:
    doc = api.get("/openapi.json").json()
    post = doc["paths"]["/v1/sweeps"]["post"]
    assert set(post["requestBody"]["content"]) == {"application/json", "application/yaml"}
    assert "SweepSpec" in doc["components"]["schemas"]
    assert {"202", "400", "401", "413", "415", "422", "503"} <= set(post["responses"])
    assert "application/problem+json" in post["responses"]["422"]["content"]


def test_start_head_script_is_shipped_beside_the_api() -> None:
    from services.api.ray_head import SCRIPT

    assert SCRIPT.is_file() and os.access(SCRIPT, os.X_OK)


def test_a_wrong_method_is_405_naming_every_method_of_the_path(api: TestClient) -> None:
    response = api.delete("/v1/sweeps")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


def test_a_body_not_in_before_the_timeout_is_refused_408() -> None:
    import asyncio

    from starlette.requests import Request

    from services.api import intake
    from services.api.problems import TooSlow

    async def trickle() -> dict[str, object]:
        await asyncio.sleep(0.05)
        return {"type": "http.request", "body": b"x", "more_body": True}  # never the last chunk

    request = Request({"type": "http", "method": "POST", "headers": [], "path": "/v1/sweeps"}, trickle)
    with pytest.raises(TooSlow, match=r"not sent within 0\.3 s"):
        asyncio.run(intake.read_body(request, limit=1_000_000, timeout=0.3))
