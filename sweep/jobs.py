"""Ray Jobs: a sweep submitted to a cluster, its status, cancellation and logs.

One job per sweep, its submission id derived from the sweep id, so a retried submit never launches
a second driver. The CLI (`sweep submit/status/cancel/logs`) and the REST service both use this.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweep import admission
from sweep.failures import short_error
from sweep.spec import SpecError, SweepSpec, load_spec
from sweep.sweep_dir import new_sweep_id

SUBMISSION_PREFIX = "sweep-"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
_SWEEP_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,120}")

# What the job's process tree gets: `ray job stop` / `sweep cancel` send SIGINT (Tune's graceful
# stop) and wait this long before SIGKILL, so every open run is closed KILLED first.
STOP_WAIT_S = 60
JOB_ENV = {
    "RAY_JOB_STOP_SIGNAL": "SIGINT",
    "RAY_JOB_STOP_WAIT_TIME_S": str(STOP_WAIT_S),
    "PYTHONUNBUFFERED": "1",
}


class JobError(RuntimeError):
    """The cluster's Jobs API refused or cannot be reached; the message says which and why."""


class TrackingError(JobError):
    """MLflow refused or cannot be reached while a sweep was being queued: nothing was submitted."""


class JobNotFound(JobError):
    """The cluster answers but has no job for this sweep (never submitted, or a restarted head)."""


@dataclass(frozen=True)
class Submission:
    sweep_id: str
    submission_id: str
    address: str
    entrypoint: str
    already_submitted: bool  # the same sweep id was submitted before: nothing new was launched


@dataclass(frozen=True)
class JobStatus:
    sweep_id: str
    submission_id: str
    status: str  # PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED (Ray's job statuses)
    message: str
    start_time: float | None  # seconds since the epoch
    end_time: float | None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def queued(self) -> bool:
        """Waiting for a slot (sweep.admission), or for its runtime environment."""
        return self.status == "PENDING"

    @classmethod
    def from_info(cls, sweep_id: str, info: Any) -> JobStatus:
        """The status of a sweep's job from Ray's `JobDetails` (times in ms) of it."""
        return cls(
            sweep_id=sweep_id,
            submission_id=str(info.submission_id),
            status=str(getattr(info.status, "value", info.status)),
            message=info.message or "",
            start_time=info.start_time / 1000 if info.start_time else None,
            end_time=info.end_time / 1000 if info.end_time else None,
            metadata=dict(info.metadata or {}),
        )


def submission_id(sweep_id: str) -> str:
    return SUBMISSION_PREFIX + sweep_id


def check_sweep_id(sweep_id: str) -> str:
    if not _SWEEP_ID.fullmatch(sweep_id):
        raise SpecError([f"{sweep_id!r} is not a sweep id (lowercase letters, digits and dashes)"])
    return sweep_id


def _use_token_if_present() -> None:
    """Ray 2.60 clusters start with token auth on: send the token whenever one is configured."""
    if os.environ.get("RAY_AUTH_MODE"):
        return
    token_path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or Path(token_path).is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


@functools.lru_cache(maxsize=8)
def job_client(address: str) -> Any:
    """A `JobSubmissionClient` for the head's dashboard address (http://HEAD:8265), one per address
    (each new client costs a round trip to the head)."""
    _use_token_if_present()
    import logging

    from ray.job_submission import JobSubmissionClient

    # One "Uploading package ..." INFO line per package and per call otherwise.
    for name in ("ray.dashboard.modules.dashboard_sdk", "ray._private.runtime_env.packaging"):
        logging.getLogger(name).setLevel(logging.WARNING)

    try:
        return JobSubmissionClient(address)
    except Exception as err:
        raise JobError(f"cannot reach the Ray Jobs API at {address}: {short_error(err)}") from err


def stage(spec: SweepSpec, folder: Path) -> None:
    """Write what the job needs into `folder`: spec.yaml, the data file (or folder) it names (as
    data/NAME) and the code files its REFs name (under code/, sweep.code_bundle)."""
    import yaml

    from sweep.code_bundle import kept_in, pack_spec
    from sweep.refs import RefError

    data = spec.model_dump(mode="json", exclude={"trial_count"})
    if spec.dataset.path:
        source = Path(spec.dataset.path)
        if not source.exists():
            raise SpecError([f"dataset.path: file not found ({source})"])
        (folder / "data").mkdir()
        if source.is_dir():
            shutil.copytree(source, folder / "data" / source.name)
        else:
            shutil.copyfile(source, folder / "data" / source.name)
        data["dataset"]["path"] = f"data/{source.name}"
    try:
        data = kept_in(data, pack_spec(spec), folder)
    except RefError as err:
        raise SpecError([str(err)]) from None
    (folder / "spec.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def submit(
    spec_path: str | Path,
    *,
    address: str,
    sweep_id: str | None = None,
    overrides: Sequence[str] = (),
    tracking_uri: str | None = None,
    runs_dir: str | None = None,
) -> Submission:
    """Submit the sweep a spec file describes (relative data paths from the file's folder)."""
    spec = load_spec(spec_path, overrides)
    try:
        return submit_spec(
            spec, address=address, sweep_id=sweep_id, tracking_uri=tracking_uri, runs_dir=runs_dir
        )
    except SpecError as err:
        raise SpecError(err.errors, str(spec_path)) from None


def submit_spec(
    spec: SweepSpec,
    *,
    address: str,
    sweep_id: str | None = None,
    tracking_uri: str | None = None,
    runs_dir: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Submission:
    """Submit a sweep as a Ray job: spec and data travel in its working dir, `sweep` as a py_module.

    `dataset.path`, if any, must be absolute or relative to this process's working directory.
    """
    import shlex

    import sweep

    sweep_id = check_sweep_id(sweep_id or new_sweep_id(spec))
    client = job_client(address)
    with tempfile.TemporaryDirectory(prefix="sweep-submit-") as folder:
        stage(spec, Path(folder))
        args = ["python", "-m", "sweep", "run", "spec.yaml", "--sweep-id", sweep_id]
        if tracking_uri:
            args += ["--tracking-uri", tracking_uri]
        if runs_dir:
            args += ["--runs-dir", runs_dir]
        entrypoint = shlex.join(args)
        sid = submission_id(sweep_id)
        runtime_env = {
            "working_dir": folder,
            "py_modules": [str(Path(sweep.__file__).resolve().parent)],
            "excludes": ["__pycache__"],
            "env_vars": dict(JOB_ENV),
        }
        held = _hold_parent(tracking_uri, spec, sweep_id, sid, metadata, runs_dir) if tracking_uri else None
        job = {
            "entrypoint": entrypoint,
            "runtime_env": runtime_env,
            "metadata": {"sweep.id": sweep_id, "sweep.name": spec.name, **(metadata or {})},
            # Ray holds the job PENDING until the head has a slot free (sweep.admission).
            "entrypoint_resources": dict(admission.ENTRYPOINT_RESOURCES),
        }
        try:
            new = _send(client, sid, job)
        except Exception as err:
            if held is not None and held[1]:  # nothing was queued: no queued record either
                _drop_parent(tracking_uri, held[0])
            raise JobError(f"the Ray Jobs API at {address} refused the sweep: {short_error(err)}") from err
    return Submission(sweep_id, sid, address, entrypoint, already_submitted=not new)


def _send(client: Any, sid: str, job: dict[str, Any], patience_s: float = 60.0) -> bool:
    """Submit the job; False when the cluster has one of this id already.

    What a head answers while it starts ("No available agent", seen for seconds after its Jobs API
    is up) and a dropped connection (a kept-alive one the dashboard closed meanwhile) are tried
    again for up to `patience_s`: the fixed submission id makes that safe, and "already exists"
    after such a try means an earlier try landed.
    """
    import requests

    deadline = time.monotonic() + patience_s
    retried = False
    while True:
        try:
            client.submit_job(submission_id=sid, **job)
            return True
        except Exception as err:
            if "already exists" in str(err):
                return retried
            # Ray's SDK raises the builtin ConnectionError ("Failed to connect to Ray at address").
            dropped = isinstance(err, ConnectionError | requests.ConnectionError)
            transient = dropped or "No available agent" in str(err)
            if not transient or time.monotonic() > deadline:
                raise
        retried = True
        time.sleep(2.0)


def _hold_parent(
    tracking_uri: str | None,
    spec: SweepSpec,
    sweep_id: str,
    sid: str,
    metadata: dict[str, str] | None,
    runs_dir: str | None,
) -> tuple[str, bool]:
    """The sweep's queued parent run (sweep.admission.hold_parent); JobError when MLflow refuses."""
    tags = {k: v for k, v in (metadata or {}).items() if k.startswith("sweep.")}
    try:
        return admission.hold_parent(str(tracking_uri), spec, sweep_id, sid, tags, runs_dir)
    except Exception as err:
        why = f"cannot record the queued sweep in MLflow at {tracking_uri}: {short_error(err)}"
        raise TrackingError(why) from err


def _drop_parent(tracking_uri: str | None, run_id: str) -> None:
    from mlflow.tracking import MlflowClient

    with contextlib.suppress(Exception):  # the submit error is what the caller needs to see
        MlflowClient(tracking_uri).delete_run(run_id)


def status(sweep_id: str, *, address: str, tracking_uri: str | None = None) -> JobStatus:
    """The Ray job of a sweep; JobError when the cluster has no such job (or cannot be reached).

    `sweep submit` names the job after the sweep; a sweep started by a plain `ray job submit` is
    found through `tracking_uri`, where its parent run records the job's submission id.
    """
    client = job_client(address)
    sid = submission_id(check_sweep_id(sweep_id))
    info = _job_info(client, sid, address)
    if info is None and tracking_uri:
        recorded = _recorded_submission_id(sweep_id, tracking_uri)
        if recorded:
            sid, info = recorded, _job_info(client, recorded, address)
    if info is None:
        raise JobNotFound(f"no Ray job for sweep {sweep_id} at {address}")
    return JobStatus.from_info(sweep_id, info)


def _job_info(client: Any, sid: str, address: str) -> Any:
    """The job's info, or None where the cluster has no job of that id."""
    try:
        return client.get_job_info(sid)
    except Exception as err:
        if "does not exist" in str(err) or "404" in str(err):
            return None
        raise JobError(f"cannot read job {sid} at {address}: {short_error(err)}") from err


def _recorded_submission_id(sweep_id: str, tracking_uri: str) -> str | None:
    """The submission id of the Ray job the sweep's parent run says drives it, if any."""
    from mlflow.tracking import MlflowClient

    from sweep.results import SweepNotFound, find_sweep
    from sweep.store.layout import JOB_TAG

    client = MlflowClient(tracking_uri)
    try:
        record = find_sweep(client, sweep_id, with_spec=False)
    except SweepNotFound:
        return None
    return client.get_run(record.parent_run_id).data.tags.get(JOB_TAG)


def cancel(
    sweep_id: str, *, address: str, wait_s: float = STOP_WAIT_S + 30, tracking_uri: str | None = None
) -> JobStatus:
    """Stop a sweep's job gracefully (SIGINT; its runs end KILLED) and wait for it to end.

    A queued job (PENDING) is not waited for: Ray ends it when its turn comes, and its driver
    does not run the sweep; its queued parent run (found through `tracking_uri`) ends KILLED now.
    """
    current = status(sweep_id, address=address)
    if current.finished:
        return current
    try:
        job_client(address).stop_job(current.submission_id)
    except Exception as err:
        raise JobError(f"cannot stop job {current.submission_id}: {short_error(err)}") from err
    if current.queued:
        if tracking_uri:
            _end_queued(sweep_id, tracking_uri)
        return current
    deadline = time.monotonic() + wait_s
    while not current.finished and time.monotonic() < deadline:
        time.sleep(1.0)
        current = status(sweep_id, address=address)
    return current


def _end_queued(sweep_id: str, tracking_uri: str) -> None:
    from mlflow.tracking import MlflowClient

    from sweep.results import SweepNotFound, find_sweep

    client = MlflowClient(tracking_uri)
    try:
        record = find_sweep(client, sweep_id, with_spec=False)
    except SweepNotFound:
        return
    admission.end_queued(client, record.parent_run_id, "cancelled while queued: it never ran")


def queue_position(sweep_id: str, *, address: str) -> int | None:
    """The sweep's place in the queue (1: next to start); None when its job is not queued."""
    try:
        listed = job_client(address).list_jobs()
    except Exception as err:
        raise JobError(f"cannot list the jobs at {address}: {short_error(err)}") from err
    pending = [
        JobStatus.from_info(str(info.submission_id).removeprefix(SUBMISSION_PREFIX), info)
        for info in listed
        if str(getattr(info.status, "value", info.status)) == "PENDING"
        and str(info.submission_id or "").startswith(SUBMISSION_PREFIX)
    ]
    return admission.queue_positions(pending).get(sweep_id)


def queue_line(sweep_id: str, *, address: str) -> str:
    """What `sweep status` says of a queued sweep: QUEUED and its place."""
    place = queue_position(sweep_id, address=address)
    return "QUEUED, waiting for a sweep slot" + (f": position {place} (1 starts next)" if place else "")


def logs(sweep_id: str, *, address: str) -> str:
    """Everything the sweep's driver printed so far."""
    current = status(sweep_id, address=address)
    try:
        return str(job_client(address).get_job_logs(current.submission_id))
    except Exception as err:
        raise JobError(f"cannot read the logs of {current.submission_id}: {short_error(err)}") from err


def watch(sweep_id: str, *, address: str, every_s: float = 2.0) -> Iterator[JobStatus]:
    """The job's status now and every `every_s` seconds until it ends."""
    while True:
        current = status(sweep_id, address=address)
        yield current
        if current.finished:
            return
        time.sleep(every_s)
