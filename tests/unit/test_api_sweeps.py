"""`Sweeps` over a real MLflow store (SQLite): the events' ids in the order trials ended, a
reconnect with Last-Event-ID that gets exactly the rest, and the status cache. Ray is left out:
the sweep here has no job (`_job` answers None), so its parent run decides its status, as after a
restart of the head."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from services.api.app import create_app
from services.api.settings import Settings
from services.api.states import Event
from services.api.sweeps import Sweeps
from sweep.jobs import JobStatus
from sweep.spec import parse_spec
from sweep.store import SweepRecord, SweepStore, layout
from sweep.store.template import seed_local_store
from sweep.trial import RunStatus, TrialConfig


class NoRay(Sweeps):
    """`Sweeps` over MLflow alone: Ray knows no job of any sweep."""

    def _job(self, sweep_id: str) -> JobStatus | None:
        return None

    def _jobs(self) -> dict[str, JobStatus]:
        return {}


SPEC = parse_spec({"name": "ev", "search": {"placement": ["none", "before_activation", "after_activation"]}})


class Store:
    """A sweep's parent run and its trial runs, written as the driver writes them (`SweepStore`)."""

    def __init__(self, uri: str) -> None:
        self.client = MlflowClient(uri)
        self.runs = SweepStore(self.client)
        self.experiment = self.client.create_experiment("events")
        self.parent = self.runs.create_sweep(self.experiment, "ev-1", SPEC, {layout.TRIALS_TOTAL: "3"})
        record = SweepRecord.from_run(self.client.get_run(self.parent))
        self.trials = {
            p: self.runs.create_trial(record, f"trial-{i}", TrialConfig(p, 0.0, "adam", 0), SPEC, 1, {})
            for i, p in enumerate(("none", "before_activation", "after_activation"))
        }

    def end(self, placement: str, at_ms: int, status: str = RunStatus.FINISHED) -> None:
        self.client.set_terminated(self.trials[placement], status, end_time=at_ms)

    def finish(self) -> None:
        self.runs.end_sweep(self.parent, "finished")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is relative to the cwd
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    seed_local_store(uri)
    return Store(uri)


@pytest.fixture
def sweeps(store: Store) -> Sweeps:
    return NoRay("http://127.0.0.1:1", store.client.tracking_uri)


def until_idle(events: Iterator[Event | None]) -> list[Event]:
    """The events up to the next poll (or the stream's end)."""
    found = []
    for event in events:
        if event is None:
            break
        found.append(event)
    return found


def brief(events: list[Event]) -> list[tuple[int, str, Any]]:
    """(id, kind, the trial's placement or the sweep's status) of each event."""
    return [
        (e.id, e.kind, e.data.get("placement") if e.kind == "trial" else e.data["state"].status)
        for e in events
    ]


def test_trials_are_numbered_in_the_order_they_ended_then_the_end(store: Store, sweeps: Sweeps) -> None:
    store.end("before_activation", 1_000)
    store.end("none", 2_000, RunStatus.FAILED)
    events = sweeps.events("ev-1", every_s=0.01)
    assert brief(until_idle(events)) == [(1, "trial", "before_activation"), (2, "trial", "none")]
    assert until_idle(events) == []  # nothing new: the next poll has nothing to say
    store.end("after_activation", 3_000)
    store.finish()
    assert brief(until_idle(events)) == [(3, "trial", "after_activation"), (4, "end", "SUCCEEDED")]
    assert next(events, None) is None  # the stream ends with the sweep


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (0, [(1, "trial", "before_activation"), (2, "trial", "none"), (3, "trial", "after_activation")]),
        (2, [(3, "trial", "after_activation")]),
        (3, []),
        (4, []),
    ],
)
def test_a_reconnect_gets_only_the_events_after_its_last_id(
    store: Store, sweeps: Sweeps, after: int, expected: list[tuple[int, str, Any]]
) -> None:
    store.end("before_activation", 1_000)
    store.end("none", 2_000)
    store.end("after_activation", 3_000)
    store.finish()
    got = brief(list(sweeps.events("ev-1", every_s=0.01, after=after)))  # type: ignore[arg-type]
    end = [(4, "end", "SUCCEEDED")] if after < 4 else []
    assert got == expected + end


def test_a_reconnect_while_running_resumes_and_waits(store: Store, sweeps: Sweeps) -> None:
    store.end("none", 1_000)
    store.end("after_activation", 2_000)
    events = sweeps.events("ev-1", every_s=0.01, after=1)
    assert brief(until_idle(events)) == [(2, "trial", "after_activation")]
    store.end("before_activation", 3_000)
    assert brief(until_idle(events)) == [(3, "trial", "before_activation")]


def test_last_event_id_over_http_against_the_store(store: Store, sweeps: Sweeps) -> None:
    store.end("before_activation", 1_000)
    store.end("none", 2_000)
    store.end("after_activation", 3_000)
    store.finish()
    app = create_app(Settings(ray_address="http://127.0.0.1:1", tracking_uri="sqlite://"), sweeps=sweeps)
    with TestClient(app) as api:
        with api.stream("GET", "/v1/sweeps/ev-1/events", headers={"Last-Event-ID": "2"}) as response:
            assert response.status_code == 200
            text = "".join(response.iter_text())
        blocks = [b.splitlines()[:2] for b in text.split("\n\n") if b]
        assert blocks == [["id: 3", "event: trial"], ["id: 4", "event: end"]]
        assert '"placement": "after_activation"' in text
        assert api.get("/v1/sweeps/ev-1/events", headers={"Last-Event-ID": "4"}).status_code == 204


def test_status_reads_are_shared_for_a_moment_but_the_end_event_is_fresh(store: Store) -> None:
    sweeps = NoRay("http://127.0.0.1:1", store.client.tracking_uri, status_cache_s=60)
    assert sweeps.get("ev-1").status == "RUNNING"
    for placement, at in (("none", 1_000), ("before_activation", 2_000), ("after_activation", 3_000)):
        store.end(placement, at)
    store.finish()
    assert sweeps.get("ev-1").status == "RUNNING"  # the read of a moment ago
    assert sweeps.get("ev-1", progress=False).status == "SUCCEEDED"  # uncached
    end = list(sweeps.events("ev-1", every_s=0.01, after=3))
    assert [(e.id, e.kind, e.data["state"].status) for e in end] == [(4, "end", "SUCCEEDED")]  # type: ignore[union-attr]


def test_a_found_parent_is_read_by_id_and_searched_again_once_deleted(
    store: Store, sweeps: Sweeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = []
    search_experiments = sweeps.mlflow.search_experiments
    monkeypatch.setattr(
        sweeps.mlflow, "search_experiments", lambda *a, **k: listed.append(1) or search_experiments(*a, **k)
    )
    assert sweeps.get("ev-1", progress=False).parent.record.parent_run_id == store.parent  # type: ignore[union-attr]
    assert sweeps.get("ev-1", progress=False).parent.record.parent_run_id == store.parent  # type: ignore[union-attr]
    assert len(listed) == 1  # the second read asked for the run by its id
    # Two drivers raced on one sweep id: the tracker deletes the newer parent, keeps the older.
    tags = {layout.SWEEP_ID: "ev-1", layout.SWEEP_NAME: "ev", layout.SWEEP_STATE: "running"}
    older = store.client.create_run(store.experiment, tags=tags, start_time=1).info.run_id
    store.client.delete_run(store.parent)
    assert sweeps.get("ev-1", progress=False).parent.record.parent_run_id == older  # type: ignore[union-attr]


def test_an_unreachable_ray_at_submit_is_named_and_leaves_no_parent_run(store: Store) -> None:
    from services.api.problems import Unavailable

    sweeps = NoRay("http://127.0.0.1:1", store.client.tracking_uri)  # none listens on port 1
    with pytest.raises(Unavailable, match="Ray Jobs API") as unreachable:
        sweeps.submit(parse_spec({"name": "turn"}), idempotency_key="k-1")
    assert "MLflow" not in unreachable.value.detail.split(":")[0]
    parents = [run.data.tags[layout.SWEEP_ID] for run in store.runs.parent_runs(None, limit=1000)]
    assert parents == ["ev-1"]  # the fixture's only


def test_the_settings_bound_concurrent_submits() -> None:
    settings = Settings(ray_address="http://127.0.0.1:1", tracking_uri="sqlite:///x.db")
    assert settings.max_concurrent_submits == 4 and settings.submit_wait_s == 120
    with pytest.raises(ValueError, match="max_concurrent_submits"):
        Settings(ray_address="http://127.0.0.1:1", max_concurrent_submits=0)
