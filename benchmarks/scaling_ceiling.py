"""The ceiling contender of scaling.py: instant trials through the engine's own recording path
(SweepTracker + TrialRecorder) into MLflow, the write side alone, and single-request round trips."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import CHILD_ENV, ROOT
from scaling_child import spawn
from scaling_meters import CpuMeter, TimedClient, latency_stats

GOAL_RESULTS_PER_S = 500.0


def ceiling_spec(trials: int, epochs: int, experiment: str) -> Any:
    """The seed spec cut to 4 placements x dropout {0.5} x {sgd, adam} x trials/8 seeds."""
    from sweep.spec import load_spec

    seeds = max(1, -(-trials // 8))
    return load_spec(
        ROOT / "examples" / "seed.yaml",
        [
            "search.dropout=[0.5]",
            f"search.seeds={seeds}",
            f"training.epochs={epochs}",
            f"tracking.experiment={experiment}",
        ],
    )


def fake_result(epoch: int, epochs: int, started: float, node_id: str, rss_mb: float) -> dict[str, Any]:
    """One epoch's result with the keys sweep.trainable reports."""
    return {
        "loss": 1.0 / epoch,
        "accuracy": 0.5 + 0.45 * epoch / epochs,
        "val_loss": 1.1 / epoch,
        "val_accuracy": 0.5 + 0.4 * epoch / epochs,
        "epoch": epoch,
        "node_id": node_id,
        "peak_rss_mb": rss_mb,
        "train_time_s": time.perf_counter() - started,
    }


def instant_trial(config: dict[str, Any], epochs: int) -> None:
    """A Tune function trainable that reports `epochs` results at once and trains nothing."""
    import resource

    import ray
    from ray import tune

    node_id = ray.get_runtime_context().get_node_id()
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        tune.report(fake_result(epoch, epochs, started, node_id, rss_mb))


class NullTracker:
    """SweepTracker's trial calls as no-ops: the recorder's writer thread does nothing."""

    def start_trial(self, trial_id: str, config: dict[str, Any]) -> str:
        return ""

    def record_result(self, trial_id: str, result: dict[str, Any]) -> None:
        pass

    def end_trial(self, trial_id: str, history: list[dict[str, Any]], **kwargs: Any) -> None:
        pass

    def retry_trial(self, trial_id: str, error: str, node: dict[str, str]) -> None:
        pass


def _measured_recorder(tracker: Any, metric: str, mode: str, total: int) -> Any:
    """A TrialRecorder that also times Tune's deliveries, its own callback and each write."""
    from sweep.recorder import TrialRecorder

    class MeasuredRecorder(TrialRecorder):
        def __init__(self) -> None:
            super().__init__(tracker, metric, mode, total, None)
            self.arrivals: list[float] = []  # time.monotonic() of each result Tune delivered
            self.callback_s = 0.0  # time on Tune's loop inside on_trial_result
            self.max_backlog = 0  # writes queued behind the writer thread, at most
            self.write_s: dict[str, float] = defaultdict(float)  # writer thread busy, by call
            self.write_n: dict[str, int] = defaultdict(int)

        def _write(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
            name = fn.__name__

            def timed(*a: Any, **k: Any) -> Any:
                started = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    self.write_s[name] += time.perf_counter() - started
                    self.write_n[name] += 1

            super()._write(timed, *args, **kwargs)

        def on_trial_result(
            self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
        ) -> None:
            started = time.perf_counter()
            self.arrivals.append(time.monotonic())
            super().on_trial_result(iteration, trials, trial, result, **info)
            self.callback_s += time.perf_counter() - started
            self.max_backlog = max(self.max_backlog, self.io._work_queue.qsize())

    return MeasuredRecorder()


def check_runs(tracker: Any, trials: int, epochs: int) -> dict[str, Any]:
    """Every child run FINISHED with val_accuracy at steps 1..epochs, once each."""
    runs = tracker.children()
    statuses: dict[str, int] = defaultdict(int)
    bad_steps = 0
    for run in runs:
        statuses[run.info.status] += 1
        steps = sorted(m.step for m in tracker.client.get_metric_history(run.info.run_id, "val_accuracy"))
        bad_steps += steps != list(range(1, epochs + 1))
    return {
        "runs": len(runs),
        "statuses": dict(statuses),
        "runs_with_wrong_steps": bad_steps,
        "ok": len(runs) == trials and dict(statuses) == {"FINISHED": trials} and bad_steps == 0,
    }


def _timed_tracker(tracking_uri: str, spec: Any, sweep_id: str, runs_dir: Path) -> Any:
    """The engine's SweepTracker with its sweep started, every request of its client timed."""
    from sweep.tracking import SweepTracker

    tracker = SweepTracker(tracking_uri, spec, sweep_id, runs_dir)
    tracker.start_sweep()
    tracker.client = TimedClient(tracker.client)
    return tracker


def _request_figures(requests: int, trials: int, seconds: float, cpu: dict[str, float]) -> dict[str, float]:
    """Requests per trial and per second, and the servers' CPU per request."""
    return {
        "requests_per_trial": requests / trials,
        "requests_per_s": requests / seconds,
        "mlflow_cpu_ms_per_request": 1000 * cpu["mlflow_cpu_s"] / requests,
        "postgres_cpu_ms_per_request": 1000 * cpu["postgres_cpu_s"] / requests,
    }


def tune_phase(
    args: argparse.Namespace, cpus: int, writes: str, runs_dir: Path, meter: CpuMeter
) -> dict[str, Any]:
    """One Tuner.fit of instant trials, recorded for real (`mlflow`) or not at all (`noop`)."""
    from ray import tune

    from sweep.space import explicit_plan, grid_configs
    from sweep.sweep_dir import new_sweep_id
    from sweep.tuner import build_tuner

    spec = ceiling_spec(args.ceiling_trials, args.ceiling_epochs, "scaling-ceiling")
    sweep_id = new_sweep_id(spec)
    sweep_dir = runs_dir / sweep_id
    sweep_dir.mkdir(parents=True)
    tracker = (
        _timed_tracker(args.tracking_uri, spec, sweep_id, runs_dir) if writes == "mlflow" else NullTracker()
    )
    plan = explicit_plan(spec, grid_configs(spec))  # a fresh grid sweep's one run (sweep.planning.grid)
    recorder = _measured_recorder(tracker, plan.metric, plan.mode, plan.num_samples)
    trainable = tune.with_resources(
        tune.with_parameters(instant_trial, epochs=spec.training.epochs), {"cpu": 1}
    )
    tuner = build_tuner(trainable, spec, plan, recorder, name="attempt-1", storage_path=sweep_dir)
    meter.start()
    started = time.monotonic()
    tuner.fit()
    fit_end = time.monotonic()
    recorder.drain()
    drained = time.monotonic()
    cpu = meter.stop()
    arrivals = recorder.arrivals
    n = len(arrivals)
    lo, hi = arrivals[int(0.1 * (n - 1))], arrivals[int(0.9 * (n - 1))]
    total_s = drained - started
    out: dict[str, Any] = {
        "writes": writes,
        "cpus": cpus,
        "trials": plan.num_samples,
        "epochs": spec.training.epochs,
        "results": n,
        "fit_s": fit_end - started,
        "drain_after_fit_s": drained - fit_end,
        "total_s": total_s,
        "first_result_s": arrivals[0] - started,
        "last_result_s": arrivals[-1] - started,
        # the figures: from Tuner.fit's start, and from the first result (Tune's start-up left out)
        "results_per_s": n / total_s,
        "results_per_s_from_first_result": n / (drained - arrivals[0]),
        # Tune's delivery rate over the middle 80% of the results
        "tune_delivery_per_s_mid80": (0.8 * (n - 1)) / (hi - lo) if hi > lo else None,
        "recorder_callback_s": recorder.callback_s,
        "max_write_backlog": recorder.max_backlog,
        "writer_busy_s": sum(recorder.write_s.values()),
        "writer_busy_by_call_s": dict(recorder.write_s),
        "writer_calls": dict(recorder.write_n),
        **cpu,
    }
    out["writer_busy_frac"] = out["writer_busy_s"] / (drained - (recorder.first_start or started))
    if writes == "mlflow":
        out["requests"] = tracker.client.summary()
        n_requests = sum(len(v) for v in tracker.client.calls.values())
        out.update(_request_figures(n_requests, plan.num_samples, total_s, cpu))
        out["check"] = check_runs(tracker, plan.num_samples, spec.training.epochs)
        tracker.finish_sweep("finished", tracker.ended_counts())
    return out


def write_side_alone(
    args: argparse.Namespace, runs_dir: Path, meter: CpuMeter, writers: int
) -> dict[str, Any]:
    """The writer thread's work without Tune: loops of SweepTracker calls, trial after trial.

    With `writers` > 1, that many threads each write their own sweep (a tracker is not
    thread-safe): what several writer threads, or several sweeps, get from one server.
    """
    from concurrent.futures import ThreadPoolExecutor

    from sweep.space import grid_configs
    from sweep.sweep_dir import new_sweep_id

    spec = ceiling_spec(args.ceiling_trials, args.ceiling_epochs, "scaling-ceiling")
    epochs = spec.training.epochs
    configs = grid_configs(spec)
    trackers = [_timed_tracker(args.tracking_uri, spec, new_sweep_id(spec), runs_dir) for _ in range(writers)]

    def write(w: int) -> None:
        tracker = trackers[w]
        for i, config in enumerate(configs[w::writers]):
            trial_id = f"w{i:05d}"
            tracker.start_trial(trial_id, config)
            begun = time.perf_counter()
            history = [fake_result(e, epochs, begun, "none", 0.0) for e in range(1, epochs + 1)]
            for result in history:
                tracker.record_result(trial_id, result)
            tracker.end_trial(trial_id, history)

    for tracker in trackers:
        tracker.client.calls.clear()  # start_sweep's requests are not the writer's
    meter.start()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=writers) as pool:
        list(pool.map(write, range(writers)))
    elapsed = time.monotonic() - started
    cpu = meter.stop()
    calls: dict[str, list[float]] = defaultdict(list)
    for tracker in trackers:
        for name, times in tracker.client.calls.items():
            calls[name] += times
    checks = [check_runs(t, len(configs[w::writers]), epochs) for w, t in enumerate(trackers)]
    for tracker in trackers:
        tracker.finish_sweep("finished", tracker.ended_counts())
    n_requests = sum(len(v) for v in calls.values())
    return {
        "writers": writers,
        "trials": len(configs),
        "epochs": epochs,
        "results": len(configs) * epochs,
        "total_s": elapsed,
        "results_per_s": len(configs) * epochs / elapsed,
        "trials_per_s": len(configs) / elapsed,
        "per_trial_ms": 1000 * elapsed / len(configs) * writers,  # per writer
        **_request_figures(n_requests, len(configs), elapsed, cpu),
        "requests": {name: latency_stats(times) for name, times in sorted(calls.items())},
        "check": {"ok": all(c["ok"] for c in checks), "runs": sum(c["runs"] for c in checks)},
        **cpu,
    }


def request_round_trips(args: argparse.Namespace, repeat: int) -> dict[str, dict[str, float]]:
    """Single requests to the server, one at a time: what each of the writer's calls costs."""
    import requests
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from sweep.store.storage import experiment_id

    client = MlflowClient(args.tracking_uri)
    exp = experiment_id(client, "scaling-latency", None)
    run_id = client.create_run(exp).info.run_id
    epochs = args.ceiling_epochs
    times: dict[str, list[float]] = defaultdict(list)

    def timed(name: str, fn: Callable[[], Any]) -> None:
        started = time.perf_counter()
        fn()
        times[name].append(time.perf_counter() - started)

    now = int(time.time() * 1000)
    for i in range(repeat):
        timed("GET /health", lambda: requests.get(f"{args.tracking_uri}/health", timeout=10))
        one = [Metric(m, 0.5, now, i + 1) for m in ("loss", "accuracy", "val_loss", "val_accuracy")]
        timed("log_batch, 1 epoch (4 metrics)", lambda one=one: client.log_batch(run_id, metrics=one))
        many = [
            Metric(m, 0.5, now, e)
            for e in range(1, epochs + 1)
            for m in ("loss", "accuracy", "val_loss", "val_accuracy")
        ]
        timed(
            f"log_batch, {epochs} epochs ({4 * epochs} metrics)",
            lambda many=many: client.log_batch(run_id, metrics=many),
        )
        created: list[str] = []
        timed("create_run", lambda created=created: created.append(client.create_run(exp).info.run_id))
        timed("set_terminated", lambda created=created: client.set_terminated(created[0], "FINISHED"))
    client.set_terminated(run_id, "FINISHED")
    return {name: latency_stats(values) for name, values in times.items()}


def ceiling_child(args: argparse.Namespace) -> dict[str, Any]:
    from sweep.cluster import init_ray

    pids = json.loads(args.server_pids)
    meter = CpuMeter(pids)
    runs_dir = Path(args.runs_dir).resolve()
    runs_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"round_trips": request_round_trips(args, repeat=30 if not args.quick else 5)}
    out["write_side_alone"] = []
    for writers in args.writers:
        print(f"  write side alone, {writers} writer(s) ...", file=sys.stderr, flush=True)
        out["write_side_alone"].append(write_side_alone(args, runs_dir, meter, writers))
    phases = []
    for cpus in args.ceiling_cpus:
        init_ray(None, cpus)  # a local Ray of the sweep's own, as `sweep run` starts it
        for round_no in range(1, args.ceiling_rounds + 1):
            for writes in ("noop", "mlflow"):
                print(f"  {cpus} CPUs, {writes} writes, round {round_no} ...", file=sys.stderr, flush=True)
                phase = tune_phase(args, cpus, writes, runs_dir, meter)
                phase["round"] = round_no
                phases.append(phase)
        import ray

        ray.shutdown()
    out["tune_phases"] = phases
    return out


def run_ceiling(
    args: argparse.Namespace, tracking_url: str, server_pids: dict[str, int], tmp: Path
) -> dict[str, Any]:
    driver_dir = tmp / "ceiling"
    driver_dir.mkdir(parents=True, exist_ok=True)
    command = [
        "--child",
        "ceiling",
        "--tracking-uri",
        tracking_url,
        "--runs-dir",
        str(driver_dir / "runs"),
        "--server-pids",
        json.dumps(server_pids),
        "--ceiling-trials",
        str(args.ceiling_trials),
        "--ceiling-epochs",
        str(args.ceiling_epochs),
        "--ceiling-cpus",
        ",".join(map(str, args.ceiling_cpus)),
        "--ceiling-rounds",
        str(args.ceiling_rounds),
        "--writers",
        ",".join(map(str, args.writers)),
        *(["--quick"] if args.quick else []),
    ]
    env = {**os.environ, **CHILD_ENV}
    env.pop("RAY_ADDRESS", None)
    return spawn(command, env, driver_dir, "ceiling", args.stamp)


def summarise_ceiling(result: dict[str, Any]) -> dict[str, Any]:
    phases = [p for p in result.get("tune_phases", []) if p["writes"] == "mlflow"]
    best = max((p["results_per_s"] for p in phases), default=None)
    return {
        "results_per_s_by_run": [round(p["results_per_s"], 1) for p in phases],
        "goal_results_per_s": GOAL_RESULTS_PER_S,
        "goal_met": best is not None and min(p["results_per_s"] for p in phases) >= GOAL_RESULTS_PER_S,
        "every_run_finished_with_every_epoch": all(p["check"]["ok"] for p in phases)
        and all(w["check"]["ok"] for w in result.get("write_side_alone", [])),
    }
