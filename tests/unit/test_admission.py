"""sweep.admission: the queue's order, the head's slots, and the queued parent run in a real
(SQLite) MLflow store that the driver takes over or that a cancel ends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from sweep import admission
from sweep.jobs import JobStatus
from sweep.reproducibility import DATA_FINGERPRINT
from sweep.spec import parse_spec
from sweep.store.layout import JOB_TAG, SPEC_ARTIFACT, SWEEP_STATE, TRIALS_TOTAL
from sweep.tracking import SweepCancelled, SweepTracker, local_tracking_uri
from sweep.trial import RunStatus

SPEC = parse_spec({"name": "queued", "search": {"placement": ["none"], "seeds": 2}})


def pending(sweep_id: str, submitted: float) -> JobStatus:
    return JobStatus(sweep_id, f"sweep-{sweep_id}", "PENDING", "", submitted, None)


def test_queue_positions_follow_submission_time_not_the_listing_order() -> None:
    jobs = [pending("c", 30.0), pending("a", 10.0), pending("b", 20.0)]
    assert admission.queue_positions(jobs) == {"a": 1, "b": 2, "c": 3}


def test_queue_positions_of_one_instant_are_still_a_strict_order() -> None:
    places = admission.queue_positions([pending("y", 5.0), pending("x", 5.0)])
    assert sorted(places.values()) == [1, 2] and places["x"] == 1


def test_head_offers_that_many_slots_as_ray_start_reads_them() -> None:
    assert json.loads(admission.head_resources(3)) == {admission.SLOT: 3}
    assert admission.ENTRYPOINT_RESOURCES == {admission.SLOT: 1.0}


@pytest.fixture
def uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    return local_tracking_uri(tmp_path)


def test_a_queued_parent_is_scheduled_with_its_spec_and_one_per_sweep_id(uri: str) -> None:
    run_id, new = admission.hold_parent(uri, SPEC, "queued-1", "sweep-queued-1")
    again, new_again = admission.hold_parent(uri, SPEC, "queued-1", "sweep-queued-1")
    assert new and not new_again and again == run_id
    run = MlflowClient(uri).get_run(run_id)
    assert run.info.status == RunStatus.SCHEDULED
    assert run.data.tags[SWEEP_STATE] == admission.QUEUED
    assert run.data.tags[JOB_TAG] == "sweep-queued-1"
    assert run.data.tags[TRIALS_TOTAL] == str(SPEC.trial_count)
    assert SPEC_ARTIFACT in {a.path for a in MlflowClient(uri).list_artifacts(run_id)}


def test_a_queued_parent_in_a_local_store_keeps_its_artifacts_beside_it(uri: str, tmp_path: Path) -> None:
    run_id, _ = admission.hold_parent(uri, SPEC, "queued-4", "sweep-queued-4", runs_dir=str(tmp_path))
    experiment = MlflowClient(uri).get_experiment(MlflowClient(uri).get_run(run_id).info.experiment_id)
    assert experiment.artifact_location == (tmp_path / "mlartifacts").resolve().as_uri()


def test_the_driver_takes_the_queued_parent_over(uri: str, tmp_path: Path) -> None:
    run_id, _ = admission.hold_parent(uri, SPEC, "queued-2", "sweep-queued-2")
    tracker = SweepTracker(
        uri, SPEC, "queued-2", tmp_path, run_tags={JOB_TAG: "sweep-queued-2"}, data_fingerprint="f" * 64
    )
    assert tracker.start_sweep() == frozenset()
    assert tracker.parent_run_id == run_id
    run = MlflowClient(uri).get_run(run_id)
    assert run.info.status == RunStatus.RUNNING
    assert run.data.tags[SWEEP_STATE] == "running"
    assert run.data.tags[DATA_FINGERPRINT] == "f" * 64  # the driver's record, taken over


def test_a_sweep_cancelled_while_queued_is_not_run_by_its_job(uri: str, tmp_path: Path) -> None:
    client = MlflowClient(uri)
    run_id, _ = admission.hold_parent(uri, SPEC, "queued-3", "sweep-queued-3")
    assert admission.end_queued(client, run_id, "cancelled while queued")
    assert not admission.end_queued(client, run_id, "twice")  # no longer queued
    run = client.get_run(run_id)
    assert run.info.status == RunStatus.KILLED and run.data.tags[SWEEP_STATE] == admission.CANCELLED
    tracker = SweepTracker(uri, SPEC, "queued-3", tmp_path, run_tags={JOB_TAG: "sweep-queued-3"})
    with pytest.raises(SweepCancelled, match="cancelled while it was queued"):
        tracker.start_sweep()
    # `sweep resume` (no job of its own) may still run it.
    assert SweepTracker(uri, SPEC, "queued-3", tmp_path).start_sweep() == frozenset()


def test_a_queued_parent_whose_spec_cannot_be_written_is_not_left_behind(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The burst of 100 POSTs (docs/api.md#queue) saw MLflow's pool time out right here: the parent
    # stayed SCHEDULED without spec.yaml and read as a FAILED sweep the client was told was refused.
    from sweep.store import SweepStore

    def refused(self: Any, parent_run_id: str, spec: Any) -> None:
        raise RuntimeError("QueuePool limit of size 5 overflow 10 reached")

    monkeypatch.setattr(SweepStore, "record_spec", refused)
    with pytest.raises(RuntimeError, match="QueuePool"):
        admission.hold_parent(uri, SPEC, "queued-5", "sweep-queued-5")
    assert SweepStore(MlflowClient(uri)).parent_runs("queued-5") == []
