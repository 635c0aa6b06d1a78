"""An in-memory stand-in for the REST service's `Sweeps` (Ray and MLflow), and its records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

from services.api.problems import Conflict, NotFound
from services.api.states import Event, Parent, SweepState
from services.api.sweeps import sweep_id_for_key
from sweep.jobs import JobStatus
from sweep.results import TRIAL_COLUMNS, SweepRecord

TOKEN = "a-token-of-at-least-16-chars"


def job(sweep_id: str, status: str = "RUNNING", **metadata: str) -> JobStatus:
    return JobStatus(sweep_id, f"sweep-{sweep_id}", status, "", 1_700_000_000.0, None, dict(metadata))


def parent(sweep_id: str, status: str = "RUNNING", job_id: str | None = None) -> Parent:
    record = SweepRecord(sweep_id, "run123", "7", "running", status, 2, None)
    return Parent(record, "tiny", job_id, 1_700_000_001.0, None, None, "val_accuracy", "max")


class FakeSweeps:
    """What routes call on `Sweeps`, kept in memory."""

    def __init__(self) -> None:
        self.states: dict[str, SweepState] = {}
        self.submitted: list[tuple[Any, str | None]] = []
        self.down: dict[str, str] = {}

    def get(self, sweep_id: str, progress: bool = True) -> SweepState:
        if sweep_id not in self.states:
            raise NotFound(f"no sweep {sweep_id!r}")
        return self.states[sweep_id]

    def recent(self, sweep_id: str) -> SweepState | None:
        return None  # as a service that has not read the sweep yet

    def list(self, status: str | None = None) -> list[SweepState]:
        states = sorted(self.states.values(), key=lambda s: s.created or 0, reverse=True)
        return [s for s in states if status is None or s.status == status]

    def submit(self, spec: Any, idempotency_key: str | None = None) -> tuple[SweepState, bool]:
        sweep_id = sweep_id_for_key(spec, idempotency_key) if idempotency_key else f"{spec.name}-1"
        self.submitted.append((spec, idempotency_key))
        if sweep_id in self.states:
            return self.states[sweep_id], False
        queued = SweepState(sweep_id, "QUEUED", None, job(sweep_id, "PENDING"), None, queue_position=1)
        self.states[sweep_id] = queued
        return self.states[sweep_id], True

    def cancel(self, sweep_id: str) -> SweepState:
        state = self.get(sweep_id)
        if state.status != "RUNNING":
            raise Conflict(f"sweep {sweep_id} has already ended: {state.status}")
        return state

    def trials(self, sweep_id: str) -> tuple[SweepState, pd.DataFrame]:
        row = dict.fromkeys(TRIAL_COLUMNS, float("nan")) | {"run_id": "r1", "status": "FINISHED"}
        return self.get(sweep_id), pd.DataFrame([row], columns=TRIAL_COLUMNS)

    def report(self, sweep_id: str, file: str) -> bytes:
        state = self.get(sweep_id)
        if state.status == "RUNNING":
            raise Conflict("running")
        return {"analysis.json": b'{"best_placement": "none"}', "report.md": b"# report"}.get(
            file, b"<html/>"
        )

    def logs(self, sweep_id: str, tail: int) -> str:
        self.get(sweep_id)
        return "".join(f"line {i}\n" for i in range(10))[-tail * 7 :]

    def events(self, sweep_id: str, every_s: float, after: int = 0) -> Iterator[Event | None]:
        state = self.get(sweep_id)
        if after < 1:
            yield Event(1, "trial", {"run_id": "r1", "status": "FINISHED"})
        if after < 2:  # as the real one: a sweep whose end the client has had yields nothing
            yield None
            yield Event(2, "end", {"state": state})

    def unavailable(self) -> dict[str, str]:
        return self.down

    def counts(self) -> dict[str, int]:
        statuses = [s.status for s in self.states.values()]
        return {"running": statuses.count("RUNNING"), "queued": statuses.count("QUEUED")}

    def reconcile(self) -> int:
        return len(self.states)
