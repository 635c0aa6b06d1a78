"""`sweep run` and `sweep resume`: a sweep on Ray Tune here, its progress live, its outcome after."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.markup import escape

from sweep.cli.render import best_table, print_answer, progress_display
from sweep.cli.root import (
    EXIT_INTERRUPTED,
    Cpus,
    Overrides,
    RayAddress,
    RunsDir,
    TrackingUri,
    check_id,
    console,
    errors,
    fail,
    fail_spec,
    load,
)
from sweep.settings import Settings
from sweep.spec import SpecError, SweepSpec

if TYPE_CHECKING:
    import pandas as pd

    from sweep.recorder import TrialEvent
    from sweep.runner import SweepResult


def run(
    file: Annotated[Path, typer.Argument(help="Spec file (YAML or JSON).")],
    set_: Overrides = None,
    runs_dir: RunsDir = Path("runs"),
    tracking_uri: TrackingUri = None,
    ray_address: RayAddress = None,
    cpus: Cpus = None,
    sweep_id: Annotated[
        str | None,
        typer.Option("--sweep-id", help="Use this id instead of a new one (`sweep submit` passes its own)."),
    ] = None,
) -> None:
    """Run a sweep: every trial on Ray Tune, every run in MLflow."""
    spec = load(file, set_)
    if sweep_id is not None:
        check_id(sweep_id)
    _run_and_render(spec, runs_dir, tracking_uri, ray_address, cpus, sweep_id=sweep_id, resume=False)


def resume(
    sweep_id: Annotated[str, typer.Argument(help="The id `sweep run` printed.")],
    runs_dir: RunsDir = Path("runs"),
    tracking_uri: TrackingUri = None,
    ray_address: RayAddress = None,
    cpus: Cpus = None,
) -> None:
    """Finish a sweep whose driver died or was stopped: trials that ended for good are kept.

    The spec comes from RUNS_DIR/SWEEP_ID/spec.yaml, else from the sweep's parent run in MLflow.
    """
    from sweep.sweep_dir import load_sweep_spec

    check_id(sweep_id)
    try:
        spec = load_sweep_spec(sweep_id, runs_dir, tracking_uri)
    except SpecError as err:
        fail_spec(err)
    _run_and_render(spec, runs_dir, tracking_uri, ray_address, cpus, sweep_id=sweep_id, resume=True)


def _run_and_render(
    spec: SweepSpec,
    runs_dir: Path,
    tracking_uri: str | None,
    ray_address: str | None,
    cpus: int | None,
    sweep_id: str | None,
    resume: bool,
) -> None:
    import logging

    from sweep.prefetch import prefetch

    # Before the imports below (Ray Tune, MLflow: seconds on one core): the data loads beside them.
    prefetched = None if resume else prefetch(spec)

    from sweep.cluster import ClusterError, cluster_address, stop_on_sigterm
    from sweep.data import DataError
    from sweep.refs import RefError
    from sweep.runner import resume_sweep, run_sweep

    try:
        cluster_address(ray_address)
    except ClusterError as err:
        fail([str(err)])
    stop_on_sigterm()

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # not "Creating initial database tables"

    console.print(f"[bold]{spec.name}[/bold]: {spec.trial_count} trials ({spec.describe_count()})")
    progress = progress_display()
    on_event = _show_events(progress, spec.trial_count)
    try:
        with progress:
            if resume and sweep_id:
                result = resume_sweep(sweep_id, runs_dir, tracking_uri, on_event, ray_address, ray_cpus=cpus)
            else:
                result = run_sweep(
                    spec,
                    runs_dir,
                    tracking_uri,
                    on_event,
                    ray_address,
                    sweep_id=sweep_id,
                    ray_cpus=cpus,
                    prefetched=prefetched,
                )
    except (DataError, ClusterError, RefError) as err:
        fail(str(err).splitlines())
    except KeyboardInterrupt:
        _interrupted()
    except Exception as err:  # the sweep's runs are closed; show the cause, not a traceback
        if Settings().debug:
            raise
        fail([f"sweep failed: {type(err).__name__}: {err}", "set SWEEP_DEBUG=1 for the traceback"], code=1)
    _render_result(spec, result)


def _show_events(progress: Any, total: int) -> Callable[[TrialEvent], None]:
    """The runner's callback: each trial event moves the progress line; a failure prints its cause."""
    task = progress.add_task("trials", total=total, failed=0, best="-")

    def on_event(event: TrialEvent) -> None:
        best = f"{event.best:.4f}" if event.best is not None else "-"
        progress.update(
            task, total=event.total, completed=event.done + event.failed, failed=event.failed, best=best
        )
        if event.error:
            label = "RETRYING" if event.status == "RETRYING" else "FAILED"
            progress.console.print(
                f"[yellow]{label}[/yellow] {escape(event.name)}: {escape(event.error)}", highlight=False
            )

    return on_event


def _render_result(spec: SweepSpec, result: SweepResult) -> None:
    """The sweep's ids and state, its best trials and, once it finished, the answer and the report."""
    from sweep.results import mlflow_run_url

    console.print(f"sweep id        {result.sweep_id}")
    console.print(f"parent run      {result.parent_run_id}")
    console.print(f"tracking uri    {result.tracking_uri}")
    link = mlflow_run_url(result.tracking_uri, result.experiment_id, result.parent_run_id)
    if link:
        console.print(f"mlflow          {link}", soft_wrap=True)
    console.print(
        f"state           {result.state}: {result.counts.get('finished', 0)} finished, "
        f"{result.counts.get('failed', 0)} failed in {result.wall_time_s:.1f} s"
    )
    if result.state == "interrupted":
        _interrupted(result.sweep_id)
    # The report already read the trial table back from MLflow; read it only if there was none.
    trials = result.trials
    if trials is None:
        trials = _read_trials(result.tracking_uri, result.sweep_id)
    table = best_table(trials, spec.strategy.metric, spec.strategy.mode)
    if table is not None:
        console.print(table)
    if result.verdict:
        print_answer(result.answer)
        console.print(f"report          {result.report_dir}/report.html (also on the parent run in MLflow)")
    elif result.report_error:
        errors.print(
            f"report not written ({escape(result.report_error)}); try `sweep report {result.sweep_id}`"
        )


def _read_trials(uri: str, sweep_id: str) -> pd.DataFrame:
    from sweep.results import find_sweep, trial_table
    from sweep.store.template import open_store

    client = open_store(uri)
    return trial_table(client, find_sweep(client, sweep_id))


def _interrupted(sweep_id: str | None = None) -> NoReturn:
    resume = f"`sweep resume {sweep_id}`" if sweep_id else "`sweep resume SWEEP_ID`"
    errors.print(f"interrupted: unfinished trials marked KILLED; {resume} continues the sweep")
    raise typer.Exit(EXIT_INTERRUPTED)
