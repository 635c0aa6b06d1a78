"""run_sweep and resume_sweep: spec -> data -> Ray Tune trials -> MLflow runs."""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep.cluster import cluster_address, init_ray, job_run_tags, sigterm_handled
from sweep.data import Dataset, load_sweep_data
from sweep.failures import install_retry_policy
from sweep.recorder import ProgressFn, TrackingLost, TrialRecorder
from sweep.reproducibility import data_fingerprint
from sweep.space import (
    CONFIRM_SEED,
    TunePlan,
    best_blocks,
    completion_plan,
    config_key,
    confirmation_plan,
    explicit_plan,
    seed_round,
    tune_plan,
    tuning_plans,
)
from sweep.spec import SweepSpec, load_spec, parse_spec, parse_spec_text
from sweep.tracking import SweepTracker, resolve_tracking_uri, trial_run_name
from sweep.trainable import train_trial

if TYPE_CHECKING:
    import pandas as pd

    from sweep.prefetch import DataPrefetch

# Ray Tune's own CSV/JSON/TensorBoard loggers duplicate what MLflow records.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# Resume reads MLflow, not Tune's experiment snapshots: take them rarely, they cost driver CPU.
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "300")
# The CLI draws its own progress; with the legacy reporter, verbose=0 keeps Tune silent.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


class _TrialErrorsInMLflowOnly(logging.Filter):
    """Tune logs each failed trial as an ERROR with its whole traceback (and lists them again at
    the end); the sweep records each on the trial's run (`error` tag, error.txt) and shows one
    line in the progress display instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Trial task failed", "Trials did not complete"))


for _name in ("ray.tune.execution.tune_controller", "ray.tune.tune"):
    logging.getLogger(_name).addFilter(_TrialErrorsInMLflowOnly())


TRACKING_URI_FILE = "tracking-uri"  # in the sweep's folder: the store its runs went to


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
    experiment_id: str = ""


def new_sweep_id(spec: SweepSpec) -> str:
    """`name-YYYYmmdd-HHMMSS-xxxx`: sortable, readable and unique."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{spec.name}-{stamp}-{secrets.token_hex(2)}"


def _trainable(spec: SweepSpec, data: Dataset) -> Any:
    from ray import tune

    # with_parameters puts the arrays in the object store once; trials read them zero-copy.
    fn = tune.with_parameters(train_trial, spec=spec, data=data)
    return tune.with_resources(
        fn, {"cpu": spec.resources.cpus_per_trial, "gpu": spec.resources.gpus_per_trial}
    )


def _open_tracker(
    uri: str, spec: SweepSpec, sweep_id: str, runs_dir: Path, fingerprint: str
) -> tuple[SweepTracker, frozenset[tuple[str, float, str, int]]]:
    tracker = SweepTracker(
        uri, spec, sweep_id, runs_dir, run_tags=job_run_tags(), data_fingerprint=fingerprint
    )
    return tracker, tracker.start_sweep()


def _attempt_name(sweep_dir: Path) -> str:
    """Tune keeps each attempt (first run, then each resume) in its own folder."""
    n = 1 + sum(1 for p in sweep_dir.glob("attempt-*") if p.is_dir() and p.name[8:].isdigit())
    return f"attempt-{n}"


def _keep_data_with_sweep(spec: SweepSpec, sweep_dir: Path) -> SweepSpec:
    """Copy a data file the spec names into the sweep's folder and point the spec at the copy.

    Inside a Ray job the spec's own folder is a temporary working directory; the copy (beside
    spec.yaml, a relative path) is what `sweep resume` reads later, wherever the sweep started.
    """
    if spec.dataset.path is None:
        return spec
    source = Path(spec.dataset.path).resolve()
    target = sweep_dir / "data" / source.name
    if source != target:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    data = spec.model_dump(mode="json", exclude={"trial_count"})
    data["dataset"]["path"] = f"data/{source.name}"
    return parse_spec(data)


PlanStep = Callable[[TrialRecorder], "TunePlan | None"]  # None: no more Tune runs
Done = frozenset[tuple[str, float, str, int]]


def _plans(spec: SweepSpec, done: Done, tracker: SweepTracker) -> tuple[Iterable[PlanStep], int]:
    """The Tune runs of one attempt, in order, and how many trials they hold together.

    Each step is built when its turn comes: per_placement's re-runs need the tuning results.
    A resumed Optuna sweep first completes the blocks it began, then draws new ones.
    """
    if spec.search.adaptive is not None:
        return _adaptive_rounds(spec, tracker), spec.trial_count
    if spec.strategy.tuning == "per_placement":
        tuning = tuning_plans(spec, done)
        confirmations = len(spec.search.placement) * spec.search.seeds
        confirmations -= sum(1 for key in done if key[3] >= CONFIRM_SEED)

        def confirm(recorder: TrialRecorder) -> TunePlan:
            best = best_blocks(_trials_so_far(tracker, recorder), spec)
            return confirmation_plan(spec, best, done)

        return [*map(_ready, tuning), confirm], sum(p.num_samples for p in tuning) + confirmations
    plans = [p for p in (completion_plan(spec, done), tune_plan(spec, done)) if p and p.num_samples]
    return list(map(_ready, plans)), sum(p.num_samples for p in plans)


def _adaptive_rounds(spec: SweepSpec, tracker: SweepTracker) -> Iterator[PlanStep]:
    """Rounds of seeds for the placements whose comparisons are undecided (sweep.adaptive).

    Each round is decided from the trials MLflow holds, so a resumed sweep replays the same
    looks and runs the round the interrupted one had not finished.
    """
    from sweep.adaptive import ENDED, call_tags, ran_keys, replay, trials_saved

    def next_round(recorder: TrialRecorder) -> TunePlan | None:
        trials = _trials_so_far(tracker, recorder)
        progress = replay(trials, spec)
        ran = int(trials["status"].isin(ENDED).sum())
        tracker.record_adaptive(
            call_tags(progress.calls),
            {"adaptive.trials_run": ran, "adaptive.trials_saved": trials_saved(spec, ran)},
        )
        if progress.next_round is None:
            return None
        round_, ended = progress.next_round, ran_keys(trials)
        points = [p for p in seed_round(spec, round_.placements, round_.seeds) if config_key(p) not in ended]
        if not points:
            return None
        recorder.total = recorder.done + recorder.failed + len(points)
        return explicit_plan(spec, points)

    return itertools.repeat(next_round)


def _trials_so_far(tracker: SweepTracker, recorder: TrialRecorder) -> Any:
    """The sweep's trial table once every write queued so far is in MLflow (between Tune runs)."""
    from sweep.results import SweepRecord, trial_table

    recorder.settle()
    record = SweepRecord(tracker.sweep_id, tracker.parent_run_id, tracker.experiment_id, "", "", 0, None)
    return trial_table(tracker.client, record)


def _ready(plan: TunePlan) -> PlanStep:
    return lambda _recorder: plan


def build_tuner(
    trainable: Any, spec: SweepSpec, plan: TunePlan, recorder: TrialRecorder, *, name: str, storage_path: Path
) -> Any:
    """The `ray.tune.Tuner` a sweep runs (benchmarks build theirs here too, to measure the same)."""
    from ray import tune

    install_retry_policy()
    return tune.Tuner(
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
            name=name,
            storage_path=str(storage_path),
            callbacks=[recorder],
            verbose=0,
            # Retries only for lost workers and nodes (sweep.failures.install_retry_policy).
            failure_config=tune.FailureConfig(max_failures=spec.resources.max_failures),
        ),
    )


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

    started = time.monotonic()
    timings: dict[str, float] = {}
    address = cluster_address(ray_address)  # before anything is created: a bad address changes nothing
    # Data errors surface before anything exists: no run, no store, no sweep folder.
    data = prefetched.result() if prefetched is not None else load_sweep_data(spec)
    runs_dir = runs_dir.resolve()
    sweep_dir = runs_dir / sweep_id
    sweep_dir.mkdir(parents=True, exist_ok=True)
    uri = resolve_tracking_uri(runs_dir, tracking_uri, spec.tracking.uri)
    (sweep_dir / TRACKING_URI_FILE).write_text(uri + "\n")  # where `sweep resume` looks by default
    fingerprint = data_fingerprint(data)  # once per sweep; a resume with other data is refused
    trainable = _trainable(spec, data)
    spec = _keep_data_with_sweep(spec, sweep_dir)
    (sweep_dir / "spec.yaml").write_text(spec.to_yaml())
    timings["data_s"] = time.monotonic() - started
    mark = time.monotonic()
    # MLflow opens (or creates) its store while Ray starts.
    with ThreadPoolExecutor(max_workers=1) as pool:
        opening = pool.submit(_open_tracker, uri, spec, sweep_id, runs_dir, fingerprint)
        ray_error: BaseException | None = None
        try:
            with sigterm_handled():  # ray.init installs its own SIGTERM handler; ours stays
                init_ray(address, ray_cpus)
        except Exception as err:  # raised below, once the parent run can record it
            ray_error = err
        tracker, done = opening.result()  # `done`: what an earlier attempt finished, per MLflow
    timings["ray_and_tracking_setup_s"] = time.monotonic() - mark
    attempt = _attempt_name(sweep_dir)
    state = "failed"
    recorder = None
    try:
        if ray_error is not None:
            raise ray_error
        plans, remaining = _plans(spec, done, tracker)
        recorder = TrialRecorder(tracker, spec.strategy.metric, spec.strategy.mode, remaining, progress)
        planned = 0
        if remaining:
            mark, cpu_mark = time.monotonic(), time.process_time()
            for i, next_plan in enumerate(plans):
                plan = next_plan(recorder)
                if plan is None:
                    break
                if not plan.num_samples:
                    continue
                planned += plan.num_samples
                name = attempt if i == 0 else f"{attempt}-{i + 1}"
                tuner = build_tuner(trainable, spec, plan, recorder, name=name, storage_path=sweep_dir)
                try:
                    tuner.fit()
                except Exception:
                    recorder.check()  # the tracking store's failure is the cause worth showing
                    raise
            timings["trials_s"] = time.monotonic() - mark
            # The driver's own CPU (Tune's loop, MLflow writes) competes with the trials for cores.
            timings["driver_cpu_s"] = time.process_time() - cpu_mark
            if recorder.first_start and recorder.last_end:
                timings["tune_startup_s"] = recorder.first_start - mark
                timings["tune_teardown_s"] = mark + timings["trials_s"] - recorder.last_end
        recorder.drain()
        if spec.search.adaptive is not None:
            remaining = planned  # what the looks asked for; the rest was saved
        ended = recorder.done + recorder.failed
        state = "finished" if ended >= remaining else "interrupted"
    except KeyboardInterrupt:
        state = "interrupted"
        raise
    except TrackingLost:
        # The store is gone: close what can be closed quickly; `sweep resume` finishes the rest.
        tracker.client.patience = 5.0
        raise
    finally:
        if recorder is not None:
            recorder.io.shutdown(wait=True)  # every queued write lands before the runs are closed
        try:
            totals = tracker.ended_counts()  # this attempt's trials and any earlier attempt's
            tracker.finish_sweep(state, totals)
        except Exception:
            if state != "failed":
                raise
            totals = {}
    result = SweepResult(
        sweep_id,
        tracker.parent_run_id,
        uri,
        state,
        totals,
        timings=timings,
        experiment_id=tracker.experiment_id,
    )
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
    prefetched: DataPrefetch | None = None,
) -> SweepResult:
    """Run every trial of `spec` on Ray Tune, record it in MLflow, and attach the report.

    Without `ray_address` (or RAY_ADDRESS, which a Ray job sets) a local Ray starts with
    `ray_cpus` CPUs (default: every core); a Ray this process already initialised is used as it is.
    `prefetched`: the data of this very spec, already loading (`sweep.prefetch`).
    """
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


def load_sweep_spec(
    sweep_id: str, runs_dir: str | Path = "runs", tracking_uri: str | None = None
) -> SweepSpec:
    """A sweep's spec: from its folder under `runs_dir`, else from its parent run in MLflow."""
    from sweep.spec import SpecError

    path = Path(runs_dir) / sweep_id / "spec.yaml"
    if path.is_file():
        return load_spec(path)
    from mlflow.tracking import MlflowClient

    from sweep.results import SweepNotFound, find_sweep

    uri = resolve_tracking_uri(Path(runs_dir).resolve(), tracking_uri, None)
    try:
        record = find_sweep(MlflowClient(uri), sweep_id)
    except SweepNotFound as err:
        raise SpecError([f"no sweep of that id under {runs_dir} or in {uri}"], sweep_id) from err
    if not record.spec_yaml:
        raise SpecError([f"its parent run in {uri} has no spec.yaml"], sweep_id)
    source = f"{sweep_id} (spec.yaml in MLflow)"
    return parse_spec(parse_spec_text(record.spec_yaml, source=source), source)


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
    lost, run again from their first epoch. Without `tracking_uri` (or MLFLOW_TRACKING_URI) the
    sweep's own tracking store, recorded in its folder, is used.
    """
    recorded = Path(runs_dir) / sweep_id / TRACKING_URI_FILE
    if not (tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")) and recorded.is_file():
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
