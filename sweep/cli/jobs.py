"""A sweep on a cluster through Ray Jobs: `submit` (and follow), `status`, `cancel`, `logs`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from sweep.cli.render import progress_display
from sweep.cli.root import JobsAddress, Overrides, TrackingUri, check_id, console, fail, fail_spec, load
from sweep.settings import Settings
from sweep.spec import SpecError


def _job_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from sweep.jobs import JobError

    try:
        return fn(*args, **kwargs)
    except JobError as err:
        fail([str(err)], code=1)
    except SpecError as err:
        fail_spec(err)


def submit(
    file: Annotated[Path, typer.Argument(help="Spec file (YAML or JSON).")],
    address: JobsAddress,
    set_: Overrides = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow tracking URI for the job (default: the cluster's MLFLOW_TRACKING_URI, else "
            "the spec's); also read here by --follow.",
        ),
    ] = None,
    runs_dir: Annotated[
        str | None,
        typer.Option("--runs-dir", help="Runs folder on the cluster (default: its SWEEP_RUNS_DIR)."),
    ] = None,
    sweep_id: Annotated[
        str | None,
        typer.Option("--sweep-id", help="Submit under this id; submitting an id again launches nothing."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Show the sweep's progress until it ends.")
    ] = False,
) -> None:
    """Run a sweep as a Ray job on a cluster: the spec and its data file travel with it."""
    from sweep import jobs

    spec = load(file, set_)  # every spec error, located, before anything reaches the cluster
    done = _job_call(
        jobs.submit,
        file,
        address=address,
        sweep_id=sweep_id,
        overrides=set_ or [],
        tracking_uri=tracking_uri,
        runs_dir=runs_dir,
    )
    console.print(f"sweep id        {done.sweep_id}")
    console.print(
        f"ray job         {done.submission_id}" + (" (already submitted)" if done.already_submitted else "")
    )
    console.print(f"jobs api        {done.address}")
    link = _experiment_link(Settings().named_tracking_uri(tracking_uri), spec.tracking.experiment)
    if link:
        console.print(f"mlflow          {link}", soft_wrap=True)
    console.print(f"next            sweep status {done.sweep_id} --address {done.address}", soft_wrap=True)
    if follow:
        _follow(done.sweep_id, address, tracking_uri)


def _experiment_link(uri: str | None, experiment: str) -> str | None:
    """The runs view of the sweep's experiment, when the tracking server answers from here."""
    if not uri or not uri.startswith(("http://", "https://")):
        return None
    from mlflow.tracking import MlflowClient

    from sweep.results import mlflow_experiment_url

    try:
        found = MlflowClient(uri).get_experiment_by_name(experiment)
    except Exception:  # not reachable from this machine: the job's own URI may differ
        return None
    return mlflow_experiment_url(uri, found.experiment_id) if found else None


def _follow(sweep_id: str, address: str, tracking_uri: str | None) -> None:
    """The job's progress as `sweep run` shows it, read from MLflow while the job runs."""
    from mlflow.tracking import MlflowClient

    from sweep import jobs
    from sweep.results import SweepNotFound, mlflow_run_url, sweep_progress

    uri = Settings().named_tracking_uri(tracking_uri)
    client = MlflowClient(uri) if uri else None
    progress = progress_display()
    task = progress.add_task("trials", total=None, failed=0, best="-")
    shown: set[tuple[str, str]] = set()
    link = None
    last = None
    with progress:
        for job in _job_call(jobs.watch, sweep_id, address=address):
            last = job
            if client is None:
                continue
            try:
                now = sweep_progress(client, sweep_id)
            except SweepNotFound:
                continue
            except Exception as err:  # the tracking server may be away for a while: keep watching
                progress.console.print(f"[yellow]tracking[/yellow] {escape(str(err))[:200]}")
                continue
            if link is None:
                link = mlflow_run_url(client.tracking_uri, now.record.experiment_id, now.record.parent_run_id)
                if link:
                    progress.console.print(f"mlflow          {link}")
            best = f"{now.best:.4f}" if now.best is not None else "-"
            total = now.record.trials_total or None
            progress.update(
                task, total=total, completed=now.finished + now.failed, failed=now.failed, best=best
            )
            for failure in now.failures:
                if failure not in shown:
                    shown.add(failure)
                    progress.console.print(
                        f"[yellow]FAILED[/yellow] {escape(failure[0])}: {escape(failure[1])}"
                    )
    if last is None:
        return
    console.print(f"job             {last.status}" + (f": {last.message}" if last.message else ""))
    if last.status != "SUCCEEDED":
        raise typer.Exit(1)


def status(
    sweep_id: Annotated[str, typer.Argument(help="The id `sweep submit` printed.")],
    address: JobsAddress,
    tracking_uri: TrackingUri = None,
) -> None:
    """A submitted sweep: its Ray job's status, and its trials as MLflow has them."""
    from datetime import UTC, datetime

    from sweep import jobs

    check_id(sweep_id)
    uri = Settings().named_tracking_uri(tracking_uri)
    job = _job_call(jobs.status, sweep_id, address=address, tracking_uri=uri)
    console.print(f"sweep id        {sweep_id}")
    console.print(
        f"ray job         {job.submission_id}: {job.status}" + (f" ({job.message})" if job.message else "")
    )
    if job.queued:
        console.print(f"queue           {_job_call(jobs.queue_line, sweep_id, address=address)}")
    for label, stamp in (("started", job.start_time), ("ended", job.end_time)):
        if stamp:
            console.print(f"{label:<15} {datetime.fromtimestamp(stamp, UTC):%Y-%m-%d %H:%M:%S} UTC")
    if not uri:
        return
    from mlflow.tracking import MlflowClient

    from sweep.results import SweepNotFound, mlflow_run_url, sweep_progress

    try:
        now = sweep_progress(MlflowClient(uri), sweep_id)
    except SweepNotFound:
        console.print(f"mlflow          no runs yet in {uri}")
        return
    console.print(
        f"trials          {now.finished} finished, {now.failed} failed, {now.running} running"
        f" of {now.record.trials_total}; sweep state {now.record.state}"
    )
    if now.best is not None:
        console.print(f"best so far     {now.best:.4f}")
    link = mlflow_run_url(uri, now.record.experiment_id, now.record.parent_run_id)
    console.print(f"parent run      {now.record.parent_run_id}" + (f"  {link}" if link else ""))


def cancel(
    sweep_id: Annotated[str, typer.Argument(help="The id `sweep submit` printed.")],
    address: JobsAddress,
) -> None:
    """Stop a submitted sweep gracefully: its open runs end KILLED, `sweep resume` can continue it."""
    from sweep import jobs

    check_id(sweep_id)
    console.print(
        f"stopping {jobs.submission_id(sweep_id)} (SIGINT, then up to {jobs.STOP_WAIT_S} s to close its runs)"
    )
    job = _job_call(jobs.cancel, sweep_id, address=address, tracking_uri=Settings().named_tracking_uri(None))
    console.print(
        f"ray job         {job.submission_id}: {job.status}" + (" (was queued: never runs)" * job.queued)
    )
    if not job.finished and not job.queued:
        fail([f"{job.submission_id} is still {job.status}"], code=1)


def logs(
    sweep_id: Annotated[str, typer.Argument(help="The id `sweep submit` printed.")],
    address: JobsAddress,
) -> None:
    """Print what a submitted sweep's driver has printed so far."""
    from sweep import jobs

    check_id(sweep_id)
    text = _job_call(jobs.logs, sweep_id, address=address)
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
