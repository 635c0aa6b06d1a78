"""A sweep's state as the service answers it: merged from its Ray job and its MLflow parent run."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from services.api.models import TERMINAL
from sweep.jobs import JobStatus
from sweep.results import SweepProgress
from sweep.store import SweepRecord
from sweep.store.layout import ERROR, JOB_TAG, METRIC_PARAM, MODE_PARAM, SWEEP_NAME
from sweep.trial import RunStatus

GONE = "its Ray job no longer exists (the Ray head restarted or forgot it) while the sweep was running"
GONE_QUEUED = "its Ray job no longer exists (the Ray head restarted or forgot it) while the sweep was queued"
# A queued parent run is written just before its job is submitted: a read in between must not
# take the job for lost.
SUBMIT_GRACE_S = 120.0
# Ray's job status -> the sweep's; a job that is not known is decided by its parent run. A job
# waits PENDING for a sweep slot (sweep.admission).
_FROM_JOB = {
    "PENDING": "QUEUED",
    "RUNNING": "RUNNING",
    "SUCCEEDED": "SUCCEEDED",
    "FAILED": "FAILED",
    "STOPPED": "CANCELLED",
}
_FROM_RUN: dict[str, str] = {
    RunStatus.RUNNING: "RUNNING",
    RunStatus.SCHEDULED: "QUEUED",
    RunStatus.FINISHED: "SUCCEEDED",
    RunStatus.KILLED: "CANCELLED",
}


@dataclass(frozen=True)
class Parent:
    """A sweep's parent run, as much of it as the service shows."""

    record: SweepRecord
    name: str | None
    job_id: str | None  # the Ray job that ran it, if it ran as one
    start: float | None  # seconds since the epoch
    end: float | None
    error: str | None
    metric: str
    mode: str


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event of a sweep.

    Trials are numbered 1, 2, ... in the order they ended and the sweep's end is one past the
    last trial, so a client that reconnects with the last id it saw gets exactly the rest.
    """

    id: int
    kind: str  # "trial" (data: its row of the trial table) or "end" (data: {"state": SweepState})
    data: dict[str, Any]


@dataclass(frozen=True)
class SweepState:
    sweep_id: str
    status: str
    reason: str | None
    job: JobStatus | None
    parent: Parent | None
    progress: SweepProgress | None = None
    queue_position: int | None = None  # QUEUED: 1 is the next to start

    @property
    def name(self) -> str | None:
        if self.parent and self.parent.name:
            return self.parent.name
        return self.job.metadata.get(SWEEP_NAME) if self.job else None

    @property
    def created(self) -> float | None:
        return (self.job.start_time if self.job else None) or (self.parent.start if self.parent else None)

    @property
    def ended(self) -> float | None:
        if self.status not in TERMINAL:
            return None
        return (self.job.end_time if self.job else None) or (self.parent.end if self.parent else None)


def status_of(
    job: JobStatus | None, parent: Parent | None, now: float | None = None
) -> tuple[str, str | None]:
    """The sweep's status and why, from its Ray job (if Ray knows it) and its parent run.

    A finished parent run outlives its job's failure: a sweep whose job died and that `sweep resume`
    then completed is SUCCEEDED, whatever its old job says. While the job runs it speaks (the
    report is attached after the parent run ends, before the job does). A queued sweep that was
    cancelled reads CANCELLED at once, though Ray keeps its job PENDING until its turn comes.
    """
    run_status = parent.record.status if parent is not None else None
    job_over = job is not None and job.status not in ("PENDING", "RUNNING")
    if run_status == RunStatus.FINISHED and (job is None or job_over):
        return "SUCCEEDED", None
    if job is not None and job.status == "PENDING" and run_status == RunStatus.KILLED:
        return "CANCELLED", None
    if job is not None:
        status = _FROM_JOB.get(job.status, "FAILED")
        return status, (job.message or None) if status == "FAILED" else None
    if parent is None:
        raise ValueError("a sweep needs a Ray job or a parent run")
    if run_status == RunStatus.RUNNING and parent.job_id:
        return "FAILED", GONE
    if run_status == RunStatus.SCHEDULED and parent.job_id:
        waited = (now or time.time()) - (parent.start or 0.0)
        return ("QUEUED", None) if waited < SUBMIT_GRACE_S else ("FAILED", GONE_QUEUED)
    status = _FROM_RUN.get(str(run_status), "FAILED")
    return status, parent.error if status == "FAILED" else None


def parent_of(run: Any) -> Parent:
    tags, params = run.data.tags, run.data.params
    return Parent(
        record=SweepRecord.from_run(run),
        name=tags.get(SWEEP_NAME),
        job_id=tags.get(JOB_TAG),
        start=run.info.start_time / 1000 if run.info.start_time else None,
        end=run.info.end_time / 1000 if run.info.end_time else None,
        error=tags.get(ERROR),
        metric=params.get(METRIC_PARAM, "val_accuracy"),
        mode=params.get(MODE_PARAM, "max"),
    )
