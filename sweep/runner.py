"""run_sweep and resume_sweep: spec -> data -> Ray Tune trials -> MLflow runs."""

from __future__ import annotations

import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep.cluster import cluster_address, init_ray, job_run_tags, sigterm_handled
from sweep.code_bundle import CodeBundle, pack_spec
from sweep.data import Dataset, load_sweep_data
from sweep.planning import Planner, planner_for
from sweep.recorder import ProgressFn, TrackingLost, TrialRecorder
from sweep.reproducibility import data_fingerprint
from sweep.settings import Settings, apply_environment
from sweep.spec import SweepSpec
from sweep.sweep_dir import (
    TRACKING_URI_FILE,
    attempt_name,
    keep_data_with_sweep,
    load_sweep_spec,
    new_sweep_id,
)
from sweep.tracking import SweepTracker
from sweep.trial import TrialKey
from sweep.trial_checkpoints import write_index
from sweep.tuner import build_tuner, tune_trainable

if TYPE_CHECKING:
    import pandas as pd

    from sweep.prefetch import DataPrefetch


class _TrialErrorsInMLflowOnly(logging.Filter):
    """Tune logs each failed trial as an ERROR with its whole traceback (and lists them again at
    the end); the sweep records each on the trial's run (`error` tag, error.txt) and shows one
    line in the progress display instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Trial task failed", "Trials did not complete"))


for _name in ("ray.tune.execution.tune_controller", "ray.tune.tune"):
    logging.getLogger(_name).addFilter(_TrialErrorsInMLflowOnly())


@dataclass
class SweepResult:
    """What a finished (or interrupted) sweep produced."""

    sweep_id: str
    parent_run_id: str
    tracking_uri: str
    state: str
    counts: dict[str, int] = field(default_factory=dict)
    wall_time_s: float = 0.0
    verdict: tuple[str, ...] = ()
    answer: tuple[str, ...] = ()  # the report's short answer, one sentence per placement
    report_dir: Path | None = None
    report_error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    trials: pd.DataFrame | None = None  # the trial table as MLflow holds it, when the report read it
    experiment_id: str = ""


def _open_tracker(
    uri: str, spec: SweepSpec, sweep_id: str, runs_dir: Path, fingerprint: str
) -> tuple[SweepTracker, frozenset[TrialKey]]:
    tracker = SweepTracker(
        uri, spec, sweep_id, runs_dir, run_tags=job_run_tags(), data_fingerprint=fingerprint
    )
    done = tracker.start_sweep()
    # What this driver's trials continue from: before Tune starts any (and none of an earlier driver).
    write_index(runs_dir / sweep_id, tracker.resume_index())
    return tracker, done


def _check_user_code(spec: SweepSpec, data: Dataset) -> tuple[CodeBundle, ...]:
    """The spec's builder held to what `sweep validate` checks, and its code packed for the
    workers, or RefError: a broken builder stops the sweep here, not in every trial."""
    if spec.model.kind == "python":
        from sweep.builders import check_builder
        from sweep.refs import RefError
        from sweep.training.keras_setup import tensorflow_quiet

        with tensorflow_quiet():
            problems = check_builder(spec, data.input_shape, data.n_classes)
        if problems:
            raise RefError("\n".join(problems))
    return pack_spec(spec)


def _trials_so_far(tracker: SweepTracker, recorder: TrialRecorder) -> pd.DataFrame:
    """The sweep's trial table once every write queued so far is in MLflow (what planners read)."""
    from sweep.results import trial_table

    recorder.settle()
    return trial_table(tracker.client, tracker.record)


def _run_plans(
    planner: Planner,
    tracker: SweepTracker,
    recorder: TrialRecorder,
    trainable: Any,
    spec: SweepSpec,
    *,
    attempt: str,
    sweep_dir: Path,
) -> dict[str, float]:
    """Ask the planner for a Tune run and run it, until it has no more; the trials' timings."""
    trials = functools.partial(_trials_so_far, tracker, recorder)
    runs = 0
    mark, cpu_mark = time.monotonic(), time.process_time()
    while (plan := planner.next_plan(trials)) is not None:
        recorder.expect(planner.expected)
        runs += 1
        name = attempt if runs == 1 else f"{attempt}-{runs}"
        tuner = build_tuner(trainable, spec, plan, recorder, name=name, storage_path=sweep_dir)
        try:
            tuner.fit()
        except Exception:
            recorder.check()  # the tracking store's failure is the cause worth showing
            raise
    if not runs:
        return {}
    timings = {"trials_s": time.monotonic() - mark}
    # The driver's own CPU (Tune's loop, MLflow writes) competes with the trials for cores.
    timings["driver_cpu_s"] = time.process_time() - cpu_mark
    if recorder.first_start and recorder.last_end:
        timings["tune_startup_s"] = recorder.first_start - mark
        timings["tune_teardown_s"] = mark + timings["trials_s"] - recorder.last_end
    return timings


def _run(
    spec: SweepSpec,
    *,
    sweep_id: str,
    runs_dir: Path,
    tracking_uri: str | None,
    progress: ProgressFn | None,
    ray_address: str | None,
    report: bool = True,
    ray_cpus: int | None = None,
    prefetched: DataPrefetch | None = None,
) -> SweepResult:
    """One attempt at a sweep: prepare its folder and data, start MLflow and Ray, run the trials."""
    started = time.monotonic()
    address = cluster_address(ray_address)  # before anything is created: a bad address changes nothing
    runs_dir = runs_dir.resolve()
    prepared = _prepare(spec, sweep_id, runs_dir, tracking_uri, prefetched)
    timings = {"data_s": time.monotonic() - started}
    mark = time.monotonic()
    tracker, done, ray_error = _start(prepared, sweep_id, runs_dir, address, ray_cpus)
    timings["ray_and_tracking_setup_s"] = time.monotonic() - mark
    state, totals = _run_trials(prepared, tracker, done, ray_error, progress, timings)
    result = SweepResult(
        sweep_id,
        tracker.parent_run_id,
        prepared.uri,
        state,
        totals,
        timings=timings,
        experiment_id=tracker.experiment_id,
    )
    if state == "finished" and report:
        mark = time.monotonic()
        _publish(result, tracker, prepared.sweep_dir / "report")
        timings["report_s"] = time.monotonic() - mark
    result.wall_time_s = time.monotonic() - started
    return result


@dataclass(frozen=True)
class _Prepared:
    """A sweep ready to start: its folder written, its data loaded, fingerprinted and in a trainable."""

    spec: SweepSpec  # naming the sweep's own copy of its data file
    sweep_dir: Path
    uri: str
    fingerprint: str
    trainable: Any


def _prepare(
    spec: SweepSpec,
    sweep_id: str,
    runs_dir: Path,
    tracking_uri: str | None,
    prefetched: DataPrefetch | None,
) -> _Prepared:
    """Load the data and check the builder, then write the sweep's folder: where its runs go, its
    spec, its data file and code."""
    # Data and builder errors surface before anything exists: no run, no store, no sweep folder.
    data = prefetched.result() if prefetched is not None else load_sweep_data(spec)
    code = _check_user_code(spec, data)
    sweep_dir = runs_dir / sweep_id
    sweep_dir.mkdir(parents=True, exist_ok=True)
    uri = Settings().resolve_tracking_uri(runs_dir, tracking_uri, spec.tracking.uri)
    (sweep_dir / TRACKING_URI_FILE).write_text(uri + "\n")  # where `sweep resume` looks by default
    fingerprint = data_fingerprint(data)  # once per sweep; a resume with other data is refused
    trainable = tune_trainable(spec, data, code, sweep_dir)
    spec = keep_data_with_sweep(spec, sweep_dir, code)
    (sweep_dir / "spec.yaml").write_text(spec.to_yaml())
    return _Prepared(spec, sweep_dir, uri, fingerprint, trainable)


def _start(
    prepared: _Prepared, sweep_id: str, runs_dir: Path, address: str | None, ray_cpus: int | None
) -> tuple[SweepTracker, frozenset[TrialKey], BaseException | None]:
    """Open the sweep's parent run while Ray starts; Ray's error, if any, is returned, not raised."""
    # MLflow opens (or creates) its store while Ray starts.
    with ThreadPoolExecutor(max_workers=1) as pool:
        opening = pool.submit(
            _open_tracker, prepared.uri, prepared.spec, sweep_id, runs_dir, prepared.fingerprint
        )
        ray_error: BaseException | None = None
        try:
            with sigterm_handled():  # ray.init installs its own SIGTERM handler; ours stays
                init_ray(address, ray_cpus)
        except Exception as err:  # raised by _run_trials, once the parent run can record it
            ray_error = err
        tracker, done = opening.result()  # `done`: what an earlier attempt finished, per MLflow
    return tracker, done, ray_error


def _run_trials(
    prepared: _Prepared,
    tracker: SweepTracker,
    done: frozenset[TrialKey],
    ray_error: BaseException | None,
    progress: ProgressFn | None,
    timings: dict[str, float],
) -> tuple[str, dict[str, int]]:
    """Run what the planner asks for, then close the sweep's runs whatever happened: state, counts."""
    spec, sweep_dir = prepared.spec, prepared.sweep_dir
    attempt = attempt_name(sweep_dir)
    state = "failed"
    recorder = None
    try:
        if ray_error is not None:
            raise ray_error
        planner = planner_for(spec, done, tracker.record_adaptive)
        recorder = TrialRecorder(
            tracker, spec.strategy.metric, spec.strategy.mode, planner.expected, progress
        )
        timings.update(
            _run_plans(
                planner, tracker, recorder, prepared.trainable, spec, attempt=attempt, sweep_dir=sweep_dir
            )
        )
        recorder.drain()
        state = "finished" if recorder.ended >= planner.expected else "interrupted"
    except KeyboardInterrupt:
        state = "interrupted"
        raise
    except TrackingLost:
        # The store is gone: close what can be closed quickly; `sweep resume` finishes the rest.
        tracker.set_patience(5.0)
        raise
    finally:
        if recorder is not None:
            recorder.close()  # every queued write lands before the runs are closed
        try:
            totals = tracker.ended_counts()  # this attempt's trials and any earlier attempt's
            tracker.finish_sweep(state, totals)
        except Exception:
            if state != "failed":
                raise
            totals = {}
    return state, totals


def _publish(result: SweepResult, tracker: SweepTracker, out_dir: Path) -> None:
    """Attach the placement report to the parent run; a report failure never fails the sweep."""
    import pandas as pd

    from sweep.publish import publish_report
    from sweep.report import short_answer
    from sweep.results import CURVE_COLUMNS

    curves = pd.DataFrame(tracker.curves, columns=CURVE_COLUMNS)
    try:
        published = publish_report(tracker.client, result.sweep_id, out_dir, known_curves=curves)
    except Exception as err:  # the trials are safe in MLflow; `sweep report` can retry
        result.report_error = f"{type(err).__name__}: {err}"
        return
    result.verdict = published.analysis.verdict
    result.answer = short_answer(published.analysis)
    result.report_dir = out_dir
    result.trials = published.trials


def run_sweep(
    spec: SweepSpec,
    runs_dir: str | Path = "runs",
    tracking_uri: str | None = None,
    progress: ProgressFn | None = None,
    ray_address: str | None = None,
    sweep_id: str | None = None,
    report: bool = True,
    ray_cpus: int | None = None,
    prefetched: DataPrefetch | None = None,
) -> SweepResult:
    """Run every trial of `spec` on Ray Tune, record it in MLflow, and attach the report.

    Without `ray_address` (or RAY_ADDRESS, which a Ray job sets) a local Ray starts with
    `ray_cpus` CPUs (default: every core); a Ray this process already initialised is used as it is.
    `prefetched`: the data of this very spec, already loading (`sweep.prefetch`).
    """
    apply_environment()
    return _run(
        spec,
        sweep_id=sweep_id or new_sweep_id(spec),
        runs_dir=Path(runs_dir),
        tracking_uri=tracking_uri,
        progress=progress,
        ray_address=ray_address,
        report=report,
        ray_cpus=ray_cpus,
        prefetched=prefetched,
    )


def resume_sweep(
    sweep_id: str,
    runs_dir: str | Path = "runs",
    tracking_uri: str | None = None,
    progress: ProgressFn | None = None,
    ray_address: str | None = None,
    report: bool = True,
    ray_cpus: int | None = None,
) -> SweepResult:
    """Finish a sweep whose driver died or was stopped.

    Trials that ended for good (in MLflow) are kept; the rest, and trials whose worker or node was
    lost, run again: from their latest checkpoint in their own run where they have one, else from
    their first epoch. Without `tracking_uri` (or MLFLOW_TRACKING_URI) the
    sweep's own tracking store, recorded in its folder, is used.
    """
    settings = apply_environment()
    recorded = Path(runs_dir) / sweep_id / TRACKING_URI_FILE
    if not settings.named_tracking_uri(tracking_uri) and recorded.is_file():
        tracking_uri = recorded.read_text().strip() or None
    return _run(
        load_sweep_spec(sweep_id, runs_dir, tracking_uri),
        sweep_id=sweep_id,
        runs_dir=Path(runs_dir),
        tracking_uri=tracking_uri,
        progress=progress,
        ray_address=ray_address,
        report=report,
        ray_cpus=ray_cpus,
    )
