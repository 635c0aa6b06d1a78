"""The sweeps the service answers for: each one's Ray job and MLflow parent run, merged and reconciled.

The service keeps nothing of its own: every answer is read from Ray and MLflow, so a restart of
the service loses nothing. A sweep's Ray job is the worker; its parent run is the record that
outlives a restarted head (Ray forgets jobs then: such a sweep reads FAILED, and its runs are
closed, so nothing stays RUNNING for ever).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from services.api.cache import ReadCache
from services.api.models import TERMINAL
from services.api.problems import Conflict, NotFound, Unavailable
from services.api.queue import check_room, resubmit
from services.api.states import GONE, Event, Parent, SweepState, parent_of, status_of
from sweep import admission, jobs
from sweep.failures import short_error
from sweep.jobs import JobError, JobStatus, TrackingError
from sweep.results import progress_of, trial_table
from sweep.spec import SpecError, SweepSpec
from sweep.store import SweepStore
from sweep.store.layout import REPORT_DIR, SWEEP_ID
from sweep.trial import ENDED, RunStatus

SPEC_HASH = "sweep.spec_sha256"  # Ray job metadata
KEY_HASH = "sweep.idempotency_key_sha256"
_LIST_LIMIT = 1000  # parent runs read for a listing


def sweep_id_for_key(spec: SweepSpec, key: str) -> str:
    """The sweep id an Idempotency-Key stands for: a retried POST lands on the same Ray job."""
    return f"{spec.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


class Sweeps:
    """Submit, read, cancel and follow sweeps on one Ray cluster and one MLflow tracking server."""

    def __init__(
        self,
        ray_address: str,
        tracking_uri: str,
        runs_dir: str | None = None,
        status_cache_s: float = 0.0,
        max_queued: int | None = None,
    ):
        self.ray_address = ray_address
        self.max_queued = max_queued  # queued sweeps beyond which a submit is refused (429)
        self.tracking_uri = tracking_uri
        self.runs_dir = runs_dir
        self.mlflow = MlflowClient(tracking_uri)
        self.store = SweepStore(self.mlflow)
        self._client: Any = None
        # A status read costs three round trips: clients polling one sweep share one a second.
        self._status: ReadCache[SweepState] = ReadCache(status_cache_s)
        # A parent run, once found, stays the sweep's (a duplicate the tracker deletes is not kept):
        # a read gets it by id instead of listing experiments and searching them.
        self._parent_ids: dict[str, str] = {}

    def _ray(self) -> Any:
        # One client: constructing one costs a round trip to the head (its version check).
        if self._client is None:
            try:
                self._client = jobs.job_client(self.ray_address)
            except JobError as err:
                raise Unavailable(f"Ray Jobs API: {err}") from None
        return self._client

    def _ray_call(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except (requests.RequestException, ConnectionError, RuntimeError) as err:
            raise Unavailable(
                f"Ray Jobs API at {self.ray_address}: cannot {what}: {short_error(err, 300)}"
            ) from None

    def _job(self, sweep_id: str) -> JobStatus | None:
        """The sweep's Ray job; None when the cluster does not know it."""
        client = self._ray()
        try:
            info = client.get_job_info(jobs.submission_id(sweep_id))
        except (requests.RequestException, ConnectionError, RuntimeError) as err:
            if "does not exist" in str(err) or "status code 404" in str(err):
                return None
            raise Unavailable(f"Ray Jobs API at {self.ray_address}: {short_error(err, 300)}") from None
        return JobStatus.from_info(sweep_id, info)

    def _jobs(self) -> dict[str, JobStatus]:
        """Every sweep job the cluster knows, by sweep id."""
        found = {}
        for info in self._ray_call("list jobs", self._ray().list_jobs):
            sid = info.submission_id or ""
            sweep_id = sid.removeprefix(jobs.SUBMISSION_PREFIX)
            if sid.startswith(jobs.SUBMISSION_PREFIX) and _valid_id(sweep_id):
                found[sweep_id] = JobStatus.from_info(sweep_id, info)
        return found

    def _mlflow(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (MlflowException, requests.RequestException, OSError) as err:
            raise Unavailable(
                f"MLflow at {self.tracking_uri}: cannot {what}: {short_error(err, 300)}"
            ) from None

    def _parents(self, sweep_id: str | None = None, limit: int = _LIST_LIMIT) -> dict[str, Parent]:
        """Parent runs by sweep id (newest first; the oldest of one id wins, as the tracker's does)."""
        # sweep_id is a checked id: [a-z0-9-] only
        runs = self._mlflow("search runs", self.store.parent_runs, sweep_id, limit=limit, newest_first=True)
        parents: dict[str, Parent] = {}
        for run in reversed(runs):
            sid = run.data.tags.get(SWEEP_ID, "")
            if sid in parents or not _valid_id(sid):
                continue
            parents[sid] = parent_of(run)
        return dict(reversed(parents.items()))

    # --- reads ------------------------------------------------------------------------------
    def get(self, sweep_id: str, progress: bool = True) -> SweepState:
        """The sweep with its trial counts (at most `status_cache_s` old), or without them (fresh)."""
        _check(sweep_id)
        if progress:
            return self._status.get(sweep_id, lambda: self._read(sweep_id, progress=True))
        return self._read(sweep_id, progress=False)

    def recent(self, sweep_id: str) -> SweepState | None:
        """`get(sweep_id)` if it can answer without waiting for Ray or MLflow, else None."""
        _check(sweep_id)
        return self._status.peek(sweep_id, lambda: self._read(sweep_id, progress=True))

    def _parent_of(self, sweep_id: str) -> Parent | None:
        """The sweep's parent run: one request once it has been found, a search until then."""
        known = self._parent_ids.get(sweep_id)
        if known is not None:
            try:
                run = self.mlflow.get_run(known)
            except (MlflowException, requests.RequestException, OSError):
                run = None  # gone, or MLflow is down: the search below tells which
            if run is not None and run.info.lifecycle_stage == "active":
                return parent_of(run)
        parent = self._parents(sweep_id).get(sweep_id)
        if parent is None:
            self._parent_ids.pop(sweep_id, None)
        else:
            self._parent_ids[sweep_id] = parent.record.parent_run_id
        return parent

    def _read(self, sweep_id: str, progress: bool) -> SweepState:
        job = self._job(sweep_id)
        parent = self._parent_of(sweep_id)
        if job is None and parent is None:
            raise NotFound(f"no sweep {sweep_id!r}: neither the Ray cluster nor MLflow knows it")
        state = self._reconciled(sweep_id, job, parent)
        if state.status == "QUEUED":
            place = admission.queue_positions(j for j in self._jobs().values() if j.queued).get(sweep_id)
            state = replace(state, queue_position=place)
        if progress and parent is not None:
            counts = self._mlflow(
                "read the trials", progress_of, self.mlflow, parent.record, parent.metric, parent.mode
            )
            state = replace(state, progress=counts)
        return state

    def list(self, status: str | None = None) -> list[SweepState]:
        """Every sweep Ray or MLflow knows (the newest 1000 parent runs), newest first (QUEUED ones:
        in their queue's order)."""
        known = self._jobs()
        parents = self._parents()
        # Oldest first: queued sweeps a restarted head forgot are submitted again in their order.
        ids = sorted(
            set(known) | set(parents), key=lambda i: (parents[i].start or 0.0) if i in parents else 0.0
        )
        states = [self._reconciled(i, known.get(i), parents.get(i)) for i in ids]
        places = admission.queue_positions(s.job for s in states if s.job is not None and s.job.queued)
        states = [
            replace(s, queue_position=places.get(s.sweep_id)) if s.status == "QUEUED" else s for s in states
        ]
        states.sort(key=lambda s: s.created or 0.0, reverse=True)
        if status == "QUEUED":  # the queue in its order: the next to start first
            states.sort(key=lambda s: s.queue_position or len(states) + 1)
        return [s for s in states if status is None or s.status == status]

    def counts(self) -> dict[str, int]:
        """Sweep jobs the cluster runs now and holds queued (waiting for a slot)."""
        known = self._jobs().values()
        return {
            "running": sum(j.status == "RUNNING" for j in known),
            "queued": sum(j.queued for j in known),
        }

    def _reconciled(self, sweep_id: str, job: JobStatus | None, parent: Parent | None) -> SweepState:
        status, reason = status_of(job, parent)
        if job is not None and job.finished and parent and parent.record.status == RunStatus.SCHEDULED:
            # Its job ended before a driver took the parent over: closed, so it is never resubmitted.
            ended = admission.CANCELLED if job.status == "STOPPED" else "failed"
            self._close(
                parent, f"its Ray job ended {job.status} before the sweep started: {job.message}", ended
            )
        if job is not None or parent is None or status != "FAILED":
            return SweepState(sweep_id, status, reason, job, parent)
        if parent.record.status == RunStatus.SCHEDULED:  # queued on a head that forgot it
            why = resubmit(
                self.store,
                parent.record,
                address=self.ray_address,
                tracking_uri=self.tracking_uri,
                runs_dir=self.runs_dir,
            )
            job = self._job(sweep_id) if why is None else None
            if job is not None:
                return SweepState(sweep_id, *status_of(job, parent), job, parent)
            reason = f"{reason}; submitting it again failed: {why or 'Ray does not list it'}"
        if parent.record.status in (RunStatus.RUNNING, RunStatus.SCHEDULED):
            self._close(parent, reason or GONE)
        return SweepState(sweep_id, status, reason, job, parent)

    def _close(self, parent: Parent, reason: str, state: str = "failed") -> None:
        """End a parent run whose job is gone, and its open trial runs, as FAILED (or `state`)."""
        record = parent.record
        try:
            for run in self.store.trial_runs(record, RunStatus.RUNNING):
                self.store.end_run(run.info.run_id, RunStatus.FAILED, reason)
            self.store.end_sweep(record.parent_run_id, state, error=reason)
        except (MlflowException, requests.RequestException, OSError):
            pass  # the answer is FAILED either way; the next read tries again

    def trials(self, sweep_id: str) -> tuple[SweepState, Any]:
        """The sweep and its trial table (a DataFrame; empty before the driver starts)."""
        state = self.get(sweep_id, progress=False)
        if state.parent is None:
            import pandas as pd

            from sweep.results import TRIAL_COLUMNS

            return state, pd.DataFrame(columns=TRIAL_COLUMNS)
        return state, self._mlflow("read the trials", trial_table, self.mlflow, state.parent.record)

    def report(self, sweep_id: str, file: str) -> bytes:
        """One of the report's files (report.md, report.html, analysis.json) from the parent run."""
        state = self.get(sweep_id, progress=False)
        if state.status not in TERMINAL:
            raise Conflict(f"sweep {sweep_id} is {state.status}: its report is written when it has ended")
        if state.parent is None:
            raise NotFound(f"sweep {sweep_id} ended ({state.status}) before it recorded anything in MLflow")
        run_id = state.parent.record.parent_run_id
        listed = self._mlflow("list the report", self.mlflow.list_artifacts, run_id, REPORT_DIR)
        if f"{REPORT_DIR}/{file}" not in {a.path for a in listed}:
            raise NotFound(
                f"sweep {sweep_id} has no report ({state.status}; a report follows a sweep that finished)"
            )
        with tempfile.TemporaryDirectory(prefix="sweep-api-report-") as folder:
            path = self._mlflow(
                "read the report", self.mlflow.download_artifacts, run_id, f"{REPORT_DIR}/{file}", folder
            )
            return Path(path).read_bytes()

    def logs(self, sweep_id: str, tail: int) -> str:
        """The last `tail` lines the sweep's driver printed."""
        _check(sweep_id)
        if self._job(sweep_id) is None:
            raise NotFound(f"the Ray cluster has no job for sweep {sweep_id!r}, so no logs")
        try:
            text = jobs.logs(sweep_id, address=self.ray_address)
        except JobError as err:
            raise Unavailable(f"Ray Jobs API: {err}") from None
        return "".join(text.splitlines(keepends=True)[-tail:])

    def events(self, sweep_id: str, every_s: float, after: int = 0) -> Iterator[Event | None]:
        """The sweep's events with an id above `after`; None between polls (see `Event`)."""
        sent = after
        while True:
            state = self.get(sweep_id, progress=False)
            ended = self._ended(state.parent) if state.parent else ()
            if len(ended) > sent and state.parent is not None:
                table = self._mlflow("read the trials", trial_table, self.mlflow, state.parent.record)
                rows = {row["run_id"]: row for row in records(table)}
                for n, run_id in enumerate(ended[sent:], start=sent + 1):
                    yield Event(n, "trial", rows[run_id])
                sent = len(ended)
            if state.status in TERMINAL:
                if after <= len(ended):  # else the client has had the end already
                    yield Event(len(ended) + 1, "end", {"state": self._read(sweep_id, progress=True)})
                return
            yield None
            time.sleep(every_s)

    def _ended(self, parent: Parent) -> tuple[str, ...]:
        """The sweep's trial runs that have ended, in the order they ended."""
        trials = self._mlflow("read the trials", self.store.trials, parent.record)
        done = [t for t in trials if t.status in ENDED and t.end_time]
        # One driver ends its runs one after another, each after a write to MLflow: end times
        # only grow, so a run that ends later never takes an earlier run's place (its event id).
        return tuple(t.run_id for t in sorted(done, key=lambda t: (t.end_time, t.run_id)))

    # --- writes -----------------------------------------------------------------------------
    def submit(self, spec: SweepSpec, idempotency_key: str | None = None) -> tuple[SweepState, bool]:
        """Run a spec as a Ray job; (the sweep, whether it was new). A known key returns its sweep.
        POST /v1/sweeps calls it in turns (`queue.Turns`)."""
        spec_hash = hashlib.sha256(spec.to_yaml().encode()).hexdigest()
        metadata = {SPEC_HASH: spec_hash}
        sweep_id = None
        known = self._jobs()
        if idempotency_key is not None:
            key_hash = hashlib.sha256(idempotency_key.encode()).hexdigest()
            metadata[KEY_HASH] = key_hash
            for job in known.values():
                if job.metadata.get(KEY_HASH) == key_hash:
                    return self._replay(job.sweep_id, job, spec_hash), False
            sweep_id = sweep_id_for_key(spec, idempotency_key)
            if sweep_id in self._parents(sweep_id):  # Ray forgot it; MLflow did not
                return self.get(sweep_id), False
        check_room(sum(job.queued for job in known.values()), self.max_queued)
        try:
            done = jobs.submit_spec(
                spec,
                address=self.ray_address,
                sweep_id=sweep_id,
                tracking_uri=self.tracking_uri,
                runs_dir=self.runs_dir,
                metadata=metadata,
            )
        except TrackingError as err:
            raise Unavailable(str(err)) from None
        except JobError as err:
            raise Unavailable(f"Ray Jobs API: {err}") from None
        except SpecError as err:  # the data file went away between the checks and the staging
            from services.api.problems import Invalid, located

            raise Invalid("the spec cannot be staged", located(err.errors)) from None
        self._status.forget(done.sweep_id)
        if done.already_submitted:  # a concurrent retry won the race
            return self._replay(done.sweep_id, self._job(done.sweep_id), spec_hash), False
        return self.get(done.sweep_id), True

    def _replay(self, sweep_id: str, job: JobStatus | None, spec_hash: str) -> SweepState:
        if job is not None and job.metadata.get(SPEC_HASH) not in (None, spec_hash):
            raise Conflict(f"this Idempotency-Key was used for another spec (sweep {sweep_id})")
        return self.get(sweep_id)

    def cancel(self, sweep_id: str) -> SweepState:
        """Ask the sweep's job to stop (SIGINT: its runs end KILLED); returns at once."""
        state = self.get(sweep_id, progress=False)
        if state.status in TERMINAL:
            raise Conflict(f"sweep {sweep_id} has already ended: {state.status}")
        if state.job is None:
            raise Conflict(
                f"sweep {sweep_id} does not run as a job on this Ray cluster (yet); stop it where it runs"
            )
        try:
            # A queued sweep's parent run ends KILLED now; its job never runs it.
            jobs.cancel(sweep_id, address=self.ray_address, wait_s=0, tracking_uri=self.tracking_uri)
        except JobError as err:
            raise Unavailable(f"Ray Jobs API: {err}") from None
        self._status.forget(sweep_id)
        return self.get(sweep_id)

    def reconcile(self) -> int:
        """Read every sweep once (closing those whose job is gone); returns how many were read."""
        return len(self.list())

    def unavailable(self) -> dict[str, str]:
        """What cannot be reached now: {'ray': why, 'mlflow': why}; empty when both answer."""
        down = {}
        try:
            self._ray_call("answer", self._ray().get_version)
        except Unavailable as err:
            down["ray"] = err.detail
        try:
            self._mlflow("answer", self.mlflow.search_experiments, max_results=1)
        except Unavailable as err:
            down["mlflow"] = err.detail
        return down


def records(table: Any) -> list[dict[str, Any]]:
    """A DataFrame's rows as JSON-ready dicts (NaN as None)."""
    return [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        for row in table.astype(object).to_dict("records")
    ]


def _valid_id(sweep_id: str) -> bool:
    try:
        jobs.check_sweep_id(sweep_id)
    except SpecError:
        return False
    return True


def _check(sweep_id: str) -> None:
    if not _valid_id(sweep_id):
        raise NotFound(f"{sweep_id[:130]!r} is not a sweep id (lowercase letters, digits and dashes)")
