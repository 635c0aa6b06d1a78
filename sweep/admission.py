"""Admission: how many sweeps run at once, and the queue the others wait in (issue 23).

Ray Jobs itself keeps the queue. The head offers `SLOT` N times (`ray start --head --resources
'{"sweep_slot": N}'`, services/start-head.sh) and every sweep job asks for one
(`ENTRYPOINT_RESOURCES`), so a job stays PENDING until a running sweep ends, whoever submitted
it. What Ray does not keep past a head restart is recorded in MLflow: a sweep submitted with a
tracking server gets its parent run at once, SCHEDULED with state `queued`, which its driver takes
over when the job starts (`sweep.tracking.SweepTracker.start_sweep`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sweep.store.layout import JOB_TAG, STATE_CANCELLED, STATE_QUEUED, SWEEP_STATE

if TYPE_CHECKING:
    from sweep.spec import SweepSpec

SLOT = "sweep_slot"
ENTRYPOINT_RESOURCES = {SLOT: 1.0}
QUEUED = STATE_QUEUED
CANCELLED = STATE_CANCELLED


class _Waiting(Protocol):
    """What a queue position is computed from: a `sweep.jobs.JobStatus` (not imported: jobs imports this)."""

    @property
    def sweep_id(self) -> str: ...
    @property
    def submission_id(self) -> str: ...
    @property
    def start_time(self) -> float | None: ...


def head_resources(slots: int) -> str:
    """`ray start --resources` for a head that runs at most `slots` sweeps at once."""
    return f'{{"{SLOT}": {int(slots)}}}'


def queue_positions(pending: Iterable[_Waiting]) -> dict[str, int]:
    """Each queued sweep's place in the queue (1: the next to start), in submission order.

    `pending` are the sweeps' PENDING jobs; Ray sets a job's start_time when it is submitted.
    """
    ordered = sorted(pending, key=lambda job: (job.start_time or 0.0, job.submission_id))
    return {job.sweep_id: place for place, job in enumerate(ordered, start=1)}


def hold_parent(
    tracking_uri: str,
    spec: SweepSpec,
    sweep_id: str,
    job_id: str,
    tags: Mapping[str, str] | None = None,
    runs_dir: str | None = None,
) -> tuple[str, bool]:
    """The queued sweep's parent run: SCHEDULED, state `queued`, its spec recorded; returns its id
    and whether it is new (else the sweep id had a parent run already).

    Two submitters of one sweep id at once: the older parent run stays, the newer is deleted (as
    two drivers do in `SweepTracker.start_sweep`).
    """
    from mlflow.tracking import MlflowClient

    from sweep.store import SweepStore
    from sweep.store.storage import experiment_id

    client = MlflowClient(tracking_uri)
    store = SweepStore(client)
    # A local store's experiment keeps its artifacts beside it, as the driver would create it.
    experiment = experiment_id(client, spec.tracking.experiment, Path(runs_dir) if runs_dir else None)
    existing = store.parent_runs(sweep_id, [experiment])
    if existing:
        return str(existing[0].info.run_id), False
    run_id = store.queue_sweep(experiment, sweep_id, spec, {JOB_TAG: job_id, **(tags or {})})
    oldest = store.parent_runs(sweep_id, [experiment])
    if oldest and oldest[0].info.run_id != run_id:
        client.delete_run(run_id)
        return str(oldest[0].info.run_id), False
    try:
        store.record_spec(run_id, spec)
    except BaseException:
        # A queued parent without its spec could never be submitted again: none is left behind.
        with contextlib.suppress(Exception):
            client.delete_run(run_id)
        raise
    return run_id, True


def end_queued(client: Any, parent_run_id: str, reason: str) -> bool:
    """End a parent run that is still queued as KILLED (state `cancelled`); False if it is not queued.

    Its job, stopped while PENDING, never runs the sweep: the driver that starts in its slot finds
    the state and exits (`SweepTracker.start_sweep`).
    """
    from sweep.store import SweepStore

    if client.get_run(parent_run_id).data.tags.get(SWEEP_STATE) != QUEUED:
        return False
    SweepStore(client).end_sweep(parent_run_id, CANCELLED, error=reason)
    return True
