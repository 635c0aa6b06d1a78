"""The service's side of the queue over a real MLflow store (SQLite): queued sweeps whose Ray job a
restarted head forgot are submitted again, in their order, under the same sweep id and metadata;
one that cannot be is closed FAILED with the reason. Ray is stood in for by what it would answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from services.api import queue, states
from services.api.sweeps import KEY_HASH, SPEC_HASH, Sweeps
from sweep import admission
from sweep.jobs import JobStatus, SpecError
from sweep.spec import parse_spec
from sweep.store.template import seed_local_store
from sweep.trial import RunStatus

SPEC = parse_spec({"name": "lost", "search": {"placement": ["none"], "seeds": 2}})


class ForgetfulRay(Sweeps):
    """`Sweeps` on a head that has just restarted: it knows only the jobs submitted since."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.submitted: dict[str, JobStatus] = {}

    def _job(self, sweep_id: str) -> JobStatus | None:
        return self.submitted.get(sweep_id)

    def _jobs(self) -> dict[str, JobStatus]:
        return dict(self.submitted)


@pytest.fixture
def uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(states, "SUBMIT_GRACE_S", -1.0)  # every queued parent is past its submit
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    seed_local_store(uri)
    return uri


def test_queued_sweeps_a_restarted_head_forgot_are_submitted_again_in_order(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    metadata = {SPEC_HASH: "s" * 64, KEY_HASH: "k" * 64}
    for sweep_id in ("lost-1", "lost-2"):
        admission.hold_parent(uri, SPEC, sweep_id, f"sweep-{sweep_id}", metadata)
    sweeps = ForgetfulRay("http://127.0.0.1:1", uri)
    sent: list[tuple[str, dict[str, str]]] = []

    def submit_spec(spec: Any, *, sweep_id: str, metadata: dict[str, str], **kw: Any) -> None:
        assert spec == SPEC
        sent.append((sweep_id, metadata))
        sweeps.submitted[sweep_id] = JobStatus(
            sweep_id, f"sweep-{sweep_id}", "PENDING", "", 1.0 + len(sent), None
        )

    monkeypatch.setattr(queue.jobs, "submit_spec", submit_spec)
    found = {s.sweep_id: s for s in sweeps.list()}
    assert sent == [("lost-1", metadata), ("lost-2", metadata)]  # oldest first: the queue's order
    assert [found[i].status for i in ("lost-1", "lost-2")] == ["QUEUED", "QUEUED"]
    assert [found[i].queue_position for i in ("lost-1", "lost-2")] == [1, 2]
    assert sweeps.list() and len(sent) == 2  # known again: not submitted twice


def test_a_forgotten_queued_sweep_that_cannot_be_submitted_again_fails_with_the_reason(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id, _ = admission.hold_parent(uri, SPEC, "lost-3", "sweep-lost-3")

    def refused(spec: Any, **kw: Any) -> None:
        raise SpecError(["dataset.path: file not found (/data/gone.csv)"])

    monkeypatch.setattr(queue.jobs, "submit_spec", refused)
    state = ForgetfulRay("http://127.0.0.1:1", uri).get("lost-3", progress=False)
    assert state.status == "FAILED"
    assert state.reason is not None and "while the sweep was queued" in state.reason
    assert "file not found (/data/gone.csv)" in state.reason
    assert MlflowClient(uri).get_run(run_id).info.status == RunStatus.FAILED  # closed, not left queued


@pytest.mark.parametrize(
    ("ended", "run_status"), [("FAILED", RunStatus.FAILED), ("STOPPED", RunStatus.KILLED)]
)
def test_a_queued_parent_whose_job_ended_before_it_started_is_closed(
    uri: str, ended: str, run_status: str
) -> None:
    run_id, _ = admission.hold_parent(uri, SPEC, "lost-4", "sweep-lost-4")
    sweeps = ForgetfulRay("http://127.0.0.1:1", uri)
    sweeps.submitted["lost-4"] = JobStatus("lost-4", "sweep-lost-4", ended, "runtime env failed", 1.0, 2.0)
    assert sweeps.get("lost-4", progress=False).status == ("FAILED" if ended == "FAILED" else "CANCELLED")
    assert MlflowClient(uri).get_run(run_id).info.status == run_status  # never resubmitted later
