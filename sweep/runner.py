"""run_sweep and resume_sweep: spec -> data -> Ray Tune trials -> MLflow runs."""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep.data import load_dataset
from sweep.space import tune_plan
from sweep.spec import SweepSpec, load_spec
from sweep.tracking import SweepTracker, one_line_error, resolve_tracking_uri, trial_run_name
from sweep.trainable import train_trial, worker_env

if TYPE_CHECKING:
    import pandas as pd

# Ray Tune's own CSV/JSON/TensorBoard loggers duplicate what MLflow records.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# Resume reads MLflow, not Tune's experiment snapshots: take them rarely, they cost driver CPU.
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "300")
# The CLI draws its own progress; with the legacy reporter, verbose=0 keeps Tune silent.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


@dataclass(frozen=True)
class TrialEvent:
    """A trial that just ended, for progress displays."""

    name: str
    status: str  # FINISHED or FAILED
    value: float | None  # the strategy metric's last value
    error: str | None
    done: int
    failed: int
    total: int
    best: float | None


ProgressFn = Callable[[TrialEvent], None]


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
    report_dir: Path | None = None
    report_error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    trials: pd.DataFrame | None = None  # the trial table as MLflow holds it, when the report read it


def new_sweep_id(spec: SweepSpec) -> str:
    """`name-YYYYmmdd-HHMMSS-xxxx`: sortable, readable and unique."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{spec.name}-{stamp}-{secrets.token_hex(2)}"


def _detached_callback() -> Any:
    from ray.tune import Callback

    return Callback()


def _tune_callback(tracker: SweepTracker, spec: SweepSpec, total: int, progress: ProgressFn | None) -> Any:
    from ray.tune import Callback

    metric, mode = spec.strategy.metric, spec.strategy.mode

    class Bridge(Callback):
        """Tune events -> MLflow child runs and progress events, on the driver."""

        def __reduce__(self) -> Any:
            # Tune pickles its run config into the experiment folder; the bridge stays here.
            return (_detached_callback, ())

        def __init__(self) -> None:
            self.history: dict[str, list[dict[str, Any]]] = {}
            self.done = 0
            self.failed = 0
            self.best: float | None = None
            self.first_start: float | None = None  # time.monotonic() of the first trial's start
            self.last_end: float | None = None
            # MLflow writes run in order on one background thread, so Tune's loop never waits on
            # the store: a trial's tune.report blocks until the driver has taken its result.
            self.io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep-mlflow")
            self.io_errors: list[BaseException] = []

        def _write(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
            def keep_error(future: Any) -> None:
                if future.exception() is not None:
                    self.io_errors.append(future.exception())

            self.io.submit(fn, *args, **kwargs).add_done_callback(keep_error)

        def drain(self) -> None:
            """Wait for every queued MLflow write; raise the first that failed."""
            self.io.shutdown(wait=True)
            if self.io_errors:
                raise RuntimeError(f"MLflow writes failed: {self.io_errors[0]}") from self.io_errors[0]

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.first_start = self.first_start or time.monotonic()
            self.history[trial.trial_id] = []
            self._write(tracker.start_trial, trial.trial_id, dict(trial.config))

        def on_trial_result(
            self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
        ) -> None:
            self.history.setdefault(trial.trial_id, []).append(result)
            self._write(tracker.record_result, trial.trial_id, dict(result))

        def _ended(self, trial: Any, error: str | None, trace: str | None) -> None:
            self.last_end = time.monotonic()
            history = self.history.pop(trial.trial_id, [])
            self._write(tracker.end_trial, trial.trial_id, history, error=error, trace=trace)
            value = history[-1].get(metric) if history else None
            if error:
                self.failed += 1
            else:
                self.done += 1
                if value is not None and (
                    self.best is None or (value > self.best if mode == "max" else value < self.best)
                ):
                    self.best = value
            if progress:
                progress(
                    TrialEvent(
                        trial_run_name(trial.config),
                        "FAILED" if error else "FINISHED",
                        value,
                        error,
                        self.done,
                        self.failed,
                        total,
                        self.best,
                    )
                )

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._ended(trial, None, None)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            # The local error file is written before this hook; storage gets it only later.
            path = trial.error_file
            trace = Path(path).read_text(errors="replace") if path and Path(path).is_file() else None
            self._ended(trial, one_line_error(trace), trace)

    return Bridge()


def _init_ray(address: str | None, cpus: int | None) -> None:
    import ray

    if ray.is_initialized():
        return
    for key, value in worker_env().items():
        os.environ.setdefault(key, value)
    if address:
        ray.init(address=address, runtime_env={"env_vars": worker_env()}, log_to_driver=False)
        return
    ray.init(
        num_cpus=cpus or os.cpu_count() or 1,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        object_store_memory=256 * 1024 * 1024,
    )


def _trainable(spec: SweepSpec) -> Any:
    from ray import tune

    data = load_dataset(spec.dataset, image=spec.model.kind == "cnn")
    # with_parameters puts the arrays in the object store once; trials read them zero-copy.
    fn = tune.with_parameters(train_trial, spec=spec, data=data)
    return tune.with_resources(
        fn, {"cpu": spec.resources.cpus_per_trial, "gpu": spec.resources.gpus_per_trial}
    )


def _open_tracker(
    uri: str, spec: SweepSpec, sweep_id: str, runs_dir: Path
) -> tuple[SweepTracker, frozenset[tuple[str, float, str, int]]]:
    tracker = SweepTracker(uri, spec, sweep_id, runs_dir)
    return tracker, tracker.start_sweep()


def _attempt_name(sweep_dir: Path) -> str:
    """Tune keeps each attempt (first run, then each resume) in its own folder."""
    n = 1 + sum(1 for p in sweep_dir.glob("attempt-*") if p.is_dir())
    return f"attempt-{n}"


def _run(
    spec: SweepSpec,
    sweep_id: str,
    runs_dir: Path,
    tracking_uri: str | None,
    progress: ProgressFn | None,
    ray_address: str | None,
    report: bool = True,
    ray_cpus: int | None = None,
) -> SweepResult:
    from ray import tune

    started = time.monotonic()
    timings: dict[str, float] = {}
    runs_dir = runs_dir.resolve()
    sweep_dir = runs_dir / sweep_id
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "spec.yaml").write_text(spec.to_yaml())
    uri = resolve_tracking_uri(runs_dir, tracking_uri, spec.tracking.uri)
    trainable = _trainable(spec)  # data errors surface before any run is created
    timings["data_s"] = time.monotonic() - started
    mark = time.monotonic()
    # MLflow opens (or creates) its store while Ray starts: on 2 cores that hides seconds.
    with ThreadPoolExecutor(max_workers=1) as pool:
        opening = pool.submit(_open_tracker, uri, spec, sweep_id, runs_dir)
        ray_error: BaseException | None = None
        try:
            _init_ray(ray_address, ray_cpus)
        except Exception as err:  # raised below, once the parent run can record it
            ray_error = err
        tracker, done = opening.result()  # `done`: what an earlier attempt finished, per MLflow
    timings["ray_and_tracking_setup_s"] = time.monotonic() - mark
    attempt = _attempt_name(sweep_dir)
    state = "failed"
    bridge = None
    try:
        if ray_error is not None:
            raise ray_error
        plan = tune_plan(spec, search_seed=len(done), done=done)
        remaining = plan.num_samples
        bridge = _tune_callback(tracker, spec, remaining, progress)
        if remaining:
            tuner = tune.Tuner(
                trainable,
                param_space=plan.param_space,
                tune_config=tune.TuneConfig(
                    metric=plan.metric,
                    mode=plan.mode,
                    search_alg=plan.search_alg,
                    scheduler=plan.scheduler,
                    num_samples=plan.num_samples,
                    max_concurrent_trials=spec.resources.max_concurrent_trials,
                    reuse_actors=True,  # TensorFlow is imported once per worker, not per trial
                    trial_name_creator=lambda t: f"{trial_run_name(t.config)}-{t.trial_id}",
                    trial_dirname_creator=lambda t: t.trial_id,
                ),
                run_config=tune.RunConfig(
                    name=attempt,
                    storage_path=str(sweep_dir),
                    callbacks=[bridge],
                    verbose=0,
                    failure_config=tune.FailureConfig(max_failures=0),
                ),
            )
            mark, cpu_mark = time.monotonic(), time.process_time()
            tuner.fit()
            timings["trials_s"] = time.monotonic() - mark
            # The driver's own CPU (Tune's loop, MLflow writes) competes with the trials for cores.
            timings["driver_cpu_s"] = time.process_time() - cpu_mark
            if bridge.first_start and bridge.last_end:
                timings["tune_startup_s"] = bridge.first_start - mark
                timings["tune_teardown_s"] = mark + timings["trials_s"] - bridge.last_end
        bridge.drain()
        ended = bridge.done + bridge.failed
        state = "finished" if ended >= remaining else "interrupted"
    except KeyboardInterrupt:
        state = "interrupted"
        raise
    finally:
        if bridge is not None:
            bridge.io.shutdown(wait=True)  # every queued write lands before the runs are closed
        totals = tracker.ended_counts()  # this attempt's trials and any earlier attempt's
        tracker.finish_sweep(state, totals)
    result = SweepResult(sweep_id, tracker.parent_run_id, uri, state, totals, timings=timings)
    if state == "finished" and report:
        mark = time.monotonic()
        _publish(result, tracker, sweep_dir / "report")
        timings["report_s"] = time.monotonic() - mark
    result.wall_time_s = time.monotonic() - started
    return result


def _publish(result: SweepResult, tracker: SweepTracker, out_dir: Path) -> None:
    """Attach the placement report to the parent run; a report failure never fails the sweep."""
    import pandas as pd

    from sweep.publish import publish_report
    from sweep.results import CURVE_COLUMNS

    curves = pd.DataFrame(tracker.curves, columns=CURVE_COLUMNS)
    try:
        published = publish_report(tracker.client, result.sweep_id, out_dir, known_curves=curves)
    except Exception as err:  # the trials are safe in MLflow; `sweep report` can retry
        result.report_error = f"{type(err).__name__}: {err}"
        return
    result.verdict = published.analysis.verdict
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
) -> SweepResult:
    """Run every trial of `spec` on Ray Tune, record it in MLflow, and attach the report.

    Without `ray_address` a local Ray starts with `ray_cpus` CPUs (default: every core); a Ray
    this process already initialised is used as it is.
    """
    return _run(
        spec,
        sweep_id or new_sweep_id(spec),
        Path(runs_dir),
        tracking_uri,
        progress,
        ray_address,
        report,
        ray_cpus,
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

    Trials that ended (in MLflow) are kept; the rest run again from their first epoch.
    """
    spec = load_spec(Path(runs_dir) / sweep_id / "spec.yaml")
    return _run(spec, sweep_id, Path(runs_dir), tracking_uri, progress, ray_address, report, ray_cpus)
