"""Scaling: two 1-CPU nodes against one 2-CPU node, and how many results/s one driver records.

Contenders:
  topology  bench.py's seed grid through run_sweep on a token-auth Ray cluster started by
            tests/integration/cluster.py: one node with 2 CPUs, then two nodes with 1 CPU each,
            interleaved rounds, MLflow server on PostgreSQL. Throughput = trials / trial phase.
  ceiling   trials that report E results at once and train nothing, through the engine's own
            recording path (SweepTracker + TrialRecorder as the Tuner's callback) into the same
            MLflow server: with real writes, with no-op writes (Tune alone), and the write side
            alone (a loop of SweepTracker calls), plus single-request round trips.

Every measurement runs in a fresh child process whose cwd is a temporary folder (Ray puts a
driver's cwd on its workers' sys.path). Usage:
  .venv/bin/python benchmarks/scaling.py                       # both, full size (~10 min)
  .venv/bin/python benchmarks/scaling.py --quick               # tiny sizes: a smoke test
  .venv/bin/python benchmarks/scaling.py --contenders ceiling --ceiling-cpus 2,8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, TextIO

from bench import CHILD_ENV, GRIDS, LOGS_DIR, RESULTS_DIR, ROOT, grid_spec, machine_info, trial_key

sys.path.insert(0, str(ROOT / "tests" / "integration"))

CONTENDERS = ("topology", "ceiling")
TOPOLOGIES = {"1x2": (1, 2), "2x1": (2, 1)}  # name: (nodes, cpus per node)
GOAL_TOPOLOGY_RATIO = 0.9  # two 1-CPU nodes >= 0.9x one 2-CPU node's trials/s
GOAL_RESULTS_PER_S = 500.0


# --- /proc: CPU seconds of process trees and of the machine -------------------------------------


def _stat(pid: int, reaped: bool = True) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of one process; `reaped` adds its waited-for children's."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces
    ticks = sum(int(f) for f in fields[11 : 15 if reaped else 13])
    return int(fields[1]), ticks / os.sysconf("SC_CLK_TCK")


def _all_stats(reaped: bool) -> dict[int, tuple[int, float]]:
    stats = {}
    for entry in Path("/proc").glob("[0-9]*"):
        found = _stat(int(entry.name), reaped)
        if found:
            stats[int(entry.name)] = found
    return stats


def _descendants(root: int, stats: dict[int, tuple[int, float]]) -> set[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _) in stats.items():
        children[ppid].append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in stats and pid not in found:
            found.add(pid)
            todo += children[pid]
    return found


class OtherWork(threading.Thread):
    """CPU seconds of processes outside this process's tree, sampled every `interval_s`.

    Sampled, not read once at the end: Ray's raylet reaps its workers without accounting their
    CPU to itself, so a finished worker's time would vanish from the tree's totals. A process
    that ends loses at most its last interval.
    """

    def __init__(self, interval_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.other_s = 0.0
        self.mine_s = 0.0
        self._last = {pid: cpu for pid, (_, cpu) in _all_stats(reaped=False).items()}
        self._done = threading.Event()

    def _tick(self) -> None:
        stats = _all_stats(reaped=False)
        mine = _descendants(os.getpid(), stats)
        for pid, (_, cpu) in stats.items():
            delta = cpu - self._last.get(pid, 0.0)
            self._last[pid] = cpu
            if pid in mine:
                self.mine_s += delta
            else:
                self.other_s += delta

    def run(self) -> None:
        while not self._done.wait(self.interval_s):
            self._tick()

    def stop(self) -> None:
        self._done.set()
        self.join()
        self._tick()


def tree_cpu_s(root: int, marker: str = "") -> tuple[float, float]:
    """CPU seconds of `root` and every descendant alive now (dead ones count in their parent).

    Returns (all of them, those whose command line holds `marker`).
    """
    stats = _all_stats(reaped=True)
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _) in stats.items():
        children[ppid].append(pid)
    total, marked, todo = 0.0, 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
            if marker:
                try:
                    if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                        marked += stats[pid][1]
                except OSError:
                    pass
            todo += children[pid]
    return total, marked


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class CpuMeter:
    """CPU used between start() and stop(): this process, the servers' trees, the whole machine.

    `mlflow server` runs its requests in a uvicorn process and keeps a job runner and huey
    consumers beside it: `mlflow_cpu_s` is the uvicorn process's, `mlflow_tree_cpu_s` all of them.
    """

    MARKERS: ClassVar[dict[str, str]] = {"mlflow": "uvicorn"}

    def __init__(self, server_pids: dict[str, int]) -> None:
        self.server_pids = server_pids
        self._start: dict[str, Any] = {}

    def _sample(self) -> dict[str, Any]:
        return {
            "wall": time.monotonic(),
            "driver": time.process_time(),
            "machine": machine_ticks(),
            **{name: tree_cpu_s(pid, self.MARKERS.get(name, "")) for name, pid in self.server_pids.items()},
        }

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> dict[str, float]:
        end, begin = self._sample(), self._start
        wall = end["wall"] - begin["wall"]
        busy = end["machine"][0] - begin["machine"][0]
        total = end["machine"][1] - begin["machine"][1]
        cores = len(os.sched_getaffinity(0))
        out = {
            "driver_cpu_s": end["driver"] - begin["driver"],
            "machine_busy_frac": busy / total if total else 0.0,  # of all cores
            "machine_busy_core_s": busy / total * wall * cores if total else 0.0,
        }
        for name in self.server_pids:
            tree = end[name][0] - begin[name][0]
            if name in self.MARKERS:
                out[f"{name}_tree_cpu_s"] = tree
                out[f"{name}_cpu_s"] = end[name][1] - begin[name][1]
            else:
                out[f"{name}_cpu_s"] = tree
        return out


# --- topology: the seed grid on one 2-CPU node and on two 1-CPU nodes ---------------------------


def topology_child(args: argparse.Namespace) -> dict[str, Any]:
    """One sweep through run_sweep on the cluster at --address; the trial table from MLflow."""
    from mlflow.tracking import MlflowClient

    import sweep.runner
    from sweep.runner import run_sweep
    from sweep.tracking import SweepTracker

    trackers: list[Any] = []

    class TimedTracker(SweepTracker):
        """The engine's tracker, its requests timed (the runner builds it by this module name)."""

        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            self.client = TimedClient(self.client)
            trackers.append(self)

    sweep.runner.SweepTracker = TimedTracker  # type: ignore[misc]
    spec = grid_spec(args.grid, [f"tracking.experiment={args.experiment}"])
    result = run_sweep(
        spec,
        runs_dir=args.runs_dir,
        tracking_uri=args.tracking_uri,
        ray_address=args.address,
        report=False,  # the report comes after the trial phase: not what this measures
    )
    client = MlflowClient(args.tracking_uri)
    experiment = client.get_experiment_by_name(args.experiment)
    runs = client.search_runs(
        [experiment.experiment_id],
        f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'",
        max_results=5000,
    )
    trials = {}
    for run in runs:
        p, m = run.data.params, run.data.metrics
        key = trial_key(p["placement"], float(p["dropout"]), p["optimizer.label"], int(p["seed"]))
        steps = client.get_metric_history(run.info.run_id, "val_accuracy")
        trials[key] = {
            "status": run.info.status,
            "val_accuracy": m.get("final_val_accuracy"),
            "epochs_recorded": len(steps),
            "node_id": run.data.tags.get("ray.node_id"),
            "train_time_s": m.get("train_time_s"),
            "duration_s": m.get("duration_s"),
            "start_ms": run.info.start_time,
            "end_ms": run.info.end_time,
        }
    finished = sum(t["status"] == "FINISHED" for t in trials.values())
    starts = [t["start_ms"] for t in trials.values() if t["start_ms"]]
    ends = [t["end_ms"] for t in trials.values() if t["end_ms"]]
    span_s = (max(ends) - min(starts)) / 1000 if starts and ends else None
    trials_s = result.timings.get("trials_s")
    calls = trackers[0].client.calls if trackers else {}
    return {
        # every request the sweep made, start_sweep and finish_sweep included
        "requests": {name: latency_stats(times) for name, times in sorted(calls.items())},
        "requests_per_trial": sum(len(t) for t in calls.values()) / max(1, spec.trial_count),
        "request_s_sum": sum(sum(t) for t in calls.values()),
        "sweep_id": result.sweep_id,
        "state": result.state,
        "trials": spec.trial_count,
        "epochs": spec.training.epochs,
        "finished": finished,
        "timings": result.timings,
        "trials_s": trials_s,
        "trials_per_s": finished / trials_s if trials_s else None,
        # the same from MLflow alone: first child run's start to the last one's end
        "mlflow_span_s": span_s,
        "trials_per_s_mlflow_span": finished / span_s if span_s else None,
        "train_time_sum_s": sum(t["train_time_s"] or 0.0 for t in trials.values()),
        "trial_table": trials,
    }


def run_topology(args: argparse.Namespace, tracking_url: str, tmp: Path) -> list[dict[str, Any]]:
    from cluster import RayCluster

    results = []
    for round_no in range(1, args.rounds + 1):
        for name in args.topologies:
            nodes, cpus = TOPOLOGIES[name]
            label = f"topology-{name}-r{round_no}"
            print(f"  {label}: starting {nodes} node(s) x {cpus} CPU ...", file=sys.stderr, flush=True)
            cluster = RayCluster(tmp / label, nodes=nodes, cpus_per_node=cpus)
            mark = time.monotonic()
            cluster.start()
            try:
                start_s = time.monotonic() - mark
                node_ids = cluster.node_ids()
                env = {**os.environ, **CHILD_ENV, **cluster.env}
                driver_dir = tmp / label / "driver"
                driver_dir.mkdir(parents=True, exist_ok=True)
                command = [
                    "--child",
                    "topology",
                    "--grid",
                    args.grid,
                    "--address",
                    cluster.address,
                    "--tracking-uri",
                    tracking_url,
                    "--runs-dir",
                    str(tmp / label / "runs"),
                    "--experiment",
                    "scaling-topology",
                ]
                result = spawn(command, env, driver_dir, label, args.stamp)
            finally:
                cluster.stop()
            result.update({"topology": name, "nodes": nodes, "cpus_per_node": cpus, "round": round_no})
            result["cluster_start_s"] = start_s
            result["cluster_nodes"] = node_ids
            if "error" not in result:
                used: dict[str, int] = defaultdict(int)
                for trial in result["trial_table"].values():
                    used[trial["node_id"]] += 1
                names = {v: k for k, v in node_ids.items()}
                result["trials_per_node"] = {names.get(k, k): v for k, v in used.items()}
                result["all_nodes_trained"] = set(used) == set(node_ids.values())
                print(
                    f"  {label}: {result['trials_per_s'] * 60:.1f} trials/min "
                    f"({result['finished']} in {result['trials_s']:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )
            results.append(result)
    return results


def compare_topologies(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per round: two nodes' throughput / one node's; results across every run of the grid."""
    ok = [r for r in results if "error" not in r]
    ratios, span_ratios = [], []
    for round_no in sorted({r["round"] for r in ok}):
        pair = {r["topology"]: r for r in ok if r["round"] == round_no}
        if "1x2" in pair and "2x1" in pair:
            one, two = pair["1x2"], pair["2x1"]
            ratio = two["trials_per_s"] / one["trials_per_s"]
            two["ratio_to_single_node"] = ratio
            ratios.append(ratio)
            if one["trials_per_s_mlflow_span"] and two["trials_per_s_mlflow_span"]:
                span_ratios.append(two["trials_per_s_mlflow_span"] / one["trials_per_s_mlflow_span"])
    # Same final val_accuracy per trial in every run, whatever the topology?
    reference = ok[0]["trial_table"] if ok else {}
    gaps = []
    for r in ok:
        for key, trial in r["trial_table"].items():
            ref = reference.get(key, {}).get("val_accuracy")
            if ref is not None and trial["val_accuracy"] is not None:
                gaps.append(abs(trial["val_accuracy"] - ref))
        r["max_abs_diff_vs_first_run"] = max(
            (
                abs(t["val_accuracy"] - reference[k]["val_accuracy"])
                for k, t in r["trial_table"].items()
                if k in reference
            ),
            default=None,
        )
    return {
        "ratios_by_round": ratios,
        "median_ratio": statistics.median(ratios) if ratios else None,
        "ratios_by_round_mlflow_span": span_ratios,
        "goal_ratio": GOAL_TOPOLOGY_RATIO,
        "goal_met": bool(ratios) and min(ratios) >= GOAL_TOPOLOGY_RATIO,
        "max_abs_diff_val_accuracy_all_runs": max(gaps) if gaps else None,
        "every_trial_finished_every_epoch": all(
            t["status"] == "FINISHED" and t["epochs_recorded"] == r["epochs"]
            for r in ok
            for t in r["trial_table"].values()
        ),
        "both_nodes_trained_in_2x1": all(r["all_nodes_trained"] for r in ok if r["topology"] == "2x1"),
    }


# --- ceiling: instant trials through the real recording path ------------------------------------


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


class TimedClient:
    """Wraps the tracker's MLflow client: the round-trip time of every request, by method."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: dict[str, list[float]] = defaultdict(list)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self.calls[name].append(time.perf_counter() - started)

        return call

    def summary(self) -> dict[str, dict[str, float]]:
        return {name: latency_stats(times) for name, times in sorted(self.calls.items())}


def latency_stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "n": len(ordered),
        "total_s": sum(ordered),
        "mean_ms": 1000 * statistics.fmean(ordered) if ordered else 0.0,
        "median_ms": 1000 * statistics.median(ordered) if ordered else 0.0,
        "p90_ms": 1000 * ordered[int(0.9 * (len(ordered) - 1))] if ordered else 0.0,
    }


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


def tune_phase(
    args: argparse.Namespace, cpus: int, writes: str, runs_dir: Path, meter: CpuMeter
) -> dict[str, Any]:
    """One Tuner.fit of instant trials, recorded for real (`mlflow`) or not at all (`noop`)."""
    from ray import tune

    from sweep.runner import build_tuner, new_sweep_id
    from sweep.space import explicit_plan, grid_configs
    from sweep.tracking import SweepTracker

    spec = ceiling_spec(args.ceiling_trials, args.ceiling_epochs, "scaling-ceiling")
    sweep_id = new_sweep_id(spec)
    sweep_dir = runs_dir / sweep_id
    sweep_dir.mkdir(parents=True)
    tracker: Any
    if writes == "mlflow":
        tracker = SweepTracker(args.tracking_uri, spec, sweep_id, runs_dir)
        tracker.start_sweep()
        tracker.client = TimedClient(tracker.client)
    else:
        tracker = NullTracker()
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
        out["requests_per_trial"] = n_requests / plan.num_samples
        out["requests_per_s"] = n_requests / total_s
        out["mlflow_cpu_ms_per_request"] = 1000 * cpu["mlflow_cpu_s"] / n_requests
        out["postgres_cpu_ms_per_request"] = 1000 * cpu["postgres_cpu_s"] / n_requests
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

    from sweep.runner import new_sweep_id
    from sweep.space import grid_configs
    from sweep.tracking import SweepTracker

    spec = ceiling_spec(args.ceiling_trials, args.ceiling_epochs, "scaling-ceiling")
    epochs = spec.training.epochs
    configs = grid_configs(spec)
    trackers = []
    for _ in range(writers):
        tracker = SweepTracker(args.tracking_uri, spec, new_sweep_id(spec), runs_dir)
        tracker.start_sweep()
        tracker.client = TimedClient(tracker.client)
        trackers.append(tracker)

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
        "requests_per_trial": n_requests / len(configs),
        "requests_per_s": n_requests / elapsed,
        "mlflow_cpu_ms_per_request": 1000 * cpu["mlflow_cpu_s"] / n_requests,
        "postgres_cpu_ms_per_request": 1000 * cpu["postgres_cpu_s"] / n_requests,
        "requests": {name: latency_stats(times) for name, times in sorted(calls.items())},
        "check": {"ok": all(c["ok"] for c in checks), "runs": sum(c["runs"] for c in checks)},
        **cpu,
    }


def request_round_trips(args: argparse.Namespace, repeat: int) -> dict[str, dict[str, float]]:
    """Single requests to the server, one at a time: what each of the writer's calls costs."""
    import requests
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from sweep.tracking import experiment_id

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
    import sweep.runner  # noqa: F401  (sets its Ray and Tune defaults)
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


# --- the parent: servers, children, tables, JSON ------------------------------------------------


def spawn(command: list[str], env: dict[str, str], cwd: Path, label: str, stamp: str) -> dict[str, Any]:
    """Run this script as a child (`--child ...`) in `cwd`; its last stdout line is its JSON."""
    LOGS_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOGS_DIR / f"scaling-{stamp}-{label}.log"
    env = {k: v for k, v in env.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    ticks, other = machine_ticks(), OtherWork()
    other.start()
    started = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), *command],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    wall = time.perf_counter() - started
    other.stop()  # did other work share the CPU? (servers, Ray nodes and child: our descendants)
    busy, total = (a - b for a, b in zip(machine_ticks(), ticks, strict=True))
    machine_core_s = busy / total * wall * len(os.sched_getaffinity(0)) if total else 0.0
    other_core_s = other.other_s
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-20:]
        print(f"  {label} failed (exit {proc.returncode}); the end of {log_path}:", file=sys.stderr)
        print("    " + "\n    ".join(tail), file=sys.stderr)
        return {"label": label, "error": f"exit {proc.returncode}", "log": str(log_path)}
    result: dict[str, Any] = json.loads(lines[-1])
    result.update({"label": label, "process_s": wall, "log": str(log_path)})
    result["machine_busy_core_s"] = machine_core_s
    result["own_core_s"] = other.mine_s
    result["other_work_core_s"] = other_core_s  # CPU used by processes this benchmark did not start
    result["other_work_frac"] = other_core_s / (wall * len(os.sched_getaffinity(0)))
    return result


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.width = max(console.width, 190)
    topology = report.get("topology")
    if topology:
        table = Table(
            title=f"topology: grid {report['grid']} ({topology['runs'][0].get('trials', '?')} trials)"
        )
        for column in (
            "round",
            "topology",
            "trials",
            "trial phase (s)",
            "trials/min",
            "x 1 node",
            "MLflow span (s)",
            "Σ build+fit (s)",
            "trials per node",
            "MLflow req/trial",
            "other work",
            "max |Δ acc|",
        ):
            table.add_column(column, justify="left" if column in ("topology", "trials per node") else "right")
        for r in topology["runs"]:
            if "error" in r:
                table.add_row(str(r["round"]), r["topology"], "-", f"[red]{r['error']}[/red]")
                continue
            table.add_row(
                str(r["round"]),
                f"{r['nodes']} x {r['cpus_per_node']} CPU",
                f"{r['finished']}/{r['trials']}",
                _fmt(r["trials_s"], ".1f"),
                _fmt(60 * r["trials_per_s"], ".1f"),
                _fmt(r.get("ratio_to_single_node"), ".2f"),
                _fmt(r["mlflow_span_s"], ".1f"),
                _fmt(r["train_time_sum_s"], ".1f"),
                ", ".join(f"{k}: {v}" for k, v in sorted(r["trials_per_node"].items())),
                _fmt(r["requests_per_trial"], ".1f"),
                f"{100 * r['other_work_frac']:.0f}%",
                _fmt(r["max_abs_diff_vs_first_run"], ".4f"),
            )
        console.print(table)
        s = topology["summary"]
        ratios = ", ".join(f"{x:.2f}" for x in s["ratios_by_round"])
        print(
            f"two 1-CPU nodes / one 2-CPU node, by round: {ratios}; median {_fmt(s['median_ratio'], '.2f')} "
            f"(goal >= {GOAL_TOPOLOGY_RATIO}: {'met' if s['goal_met'] else 'MISSED'}); "
            f"both nodes trained: {s['both_nodes_trained_in_2x1']}; "
            f"max |Δ final val_accuracy| over all runs: "
            f"{_fmt(s['max_abs_diff_val_accuracy_all_runs'], '.6f')}"
        )
    ceiling = report.get("ceiling")
    if ceiling and "error" not in ceiling:
        table = Table(title="driver ceiling: instant trials through SweepTracker + TrialRecorder")
        for column in (
            "CPUs",
            "writes",
            "round",
            "results",
            "fit (s)",
            "drain after fit (s)",
            "results/s",
            "from 1st result",
            "Tune mid-80% /s",
            "writer busy",
            "req/trial",
            "mlflow CPU/req (ms)",
            "max backlog",
            "driver CPU",
            "mlflow CPU",
            "postgres CPU",
            "machine busy",
        ):
            table.add_column(column, justify="right")
        for p in ceiling["tune_phases"]:
            wall = p["total_s"]
            table.add_row(
                str(p["cpus"]),
                p["writes"],
                str(p["round"]),
                str(p["results"]),
                _fmt(p["fit_s"], ".1f"),
                _fmt(p["drain_after_fit_s"], ".2f"),
                _fmt(p["results_per_s"], ".0f"),
                _fmt(p["results_per_s_from_first_result"], ".0f"),
                _fmt(p["tune_delivery_per_s_mid80"], ".0f"),
                f"{100 * p['writer_busy_frac']:.0f}%",
                _fmt(p.get("requests_per_trial"), ".1f"),
                _fmt(p.get("mlflow_cpu_ms_per_request"), ".1f"),
                str(p["max_write_backlog"]),
                f"{100 * p['driver_cpu_s'] / wall:.0f}%",
                f"{100 * p['mlflow_cpu_s'] / wall:.0f}%",
                f"{100 * p['postgres_cpu_s'] / wall:.0f}%",
                f"{100 * p['machine_busy_frac']:.0f}%",
            )
        console.print(table)
        for alone in ceiling["write_side_alone"]:
            print(
                f"write side alone, {alone['writers']} writer thread(s): {alone['results']} results in "
                f"{alone['total_s']:.2f} s = {alone['results_per_s']:.0f} results/s, "
                f"{alone['requests_per_s']:.0f} requests/s; {alone['requests_per_trial']:.1f} requests "
                f"per trial of {alone['epochs']} epochs; server CPU per request: mlflow "
                f"{alone['mlflow_cpu_ms_per_request']:.1f} ms, "
                f"postgres {alone['postgres_cpu_ms_per_request']:.1f} ms"
            )
        table = Table(title="one request at a time (client round trip)")
        for column in ("request", "n", "median (ms)", "p90 (ms)"):
            table.add_column(column, justify="left" if column == "request" else "right")
        for name, stats in ceiling["round_trips"].items():
            table.add_row(name, str(stats["n"]), f"{stats['median_ms']:.1f}", f"{stats['p90_ms']:.1f}")
        console.print(table)
        s = ceiling["summary"]
        print(f"other work during the ceiling child: {100 * ceiling['other_work_frac']:.0f}% of the cores")
        print(
            f"results/s (Tuner.fit start -> drain), real writes: {s['results_per_s_by_run']} "
            f"(goal >= {GOAL_RESULTS_PER_S:.0f}: {'met' if s['goal_met'] else 'MISSED'}); "
            f"every run FINISHED with every epoch: {s['every_run_finished_with_every_epoch']}"
        )


def parent(args: argparse.Namespace) -> int:
    from cluster import MlflowServer, PostgresServer

    args.stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    machine = machine_info()  # the load average before the runs: is the machine quiet?
    report: dict[str, Any] = {
        "started": args.stamp,
        "quick": args.quick,
        "grid": args.grid,
        "grid_overrides": GRIDS[args.grid],
        "rounds": args.rounds,
        "ceiling": None,
        "topology": None,
    }
    with tempfile.TemporaryDirectory(prefix="scaling-") as name:
        tmp = Path(name)
        with (
            PostgresServer(tmp / "postgres") as postgres,
            MlflowServer(postgres.url, tmp / "artifacts") as mlflow,
        ):
            print(f"MLflow server {mlflow.url} on PostgreSQL (1 worker)", file=sys.stderr, flush=True)
            if "topology" in args.contenders:
                runs = run_topology(args, mlflow.url, tmp)
                report["topology"] = {"runs": runs, "summary": compare_topologies(runs)}
            if "ceiling" in args.contenders:
                pids = {"mlflow": mlflow._proc.pid, "postgres": postgres._proc.pid}  # type: ignore[union-attr]
                ceiling = run_ceiling(args, mlflow.url, pids, tmp)
                if "error" not in ceiling:
                    ceiling["summary"] = summarise_ceiling(ceiling)
                report["ceiling"] = ceiling
    report["machine"] = {**machine, "load_average_after": os.getloadavg()}
    report["settings"] = {
        "ceiling_trials": args.ceiling_trials,
        "ceiling_epochs": args.ceiling_epochs,
        "ceiling_cpus": args.ceiling_cpus,
        "ceiling_rounds": args.ceiling_rounds,
        "writers": args.writers,
        "mlflow_workers": 1,
    }
    render(report)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"scaling{'-quick' if args.quick else ''}-{args.stamp}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    failed = [r for r in (report["topology"] or {}).get("runs", []) if "error" in r]
    return 1 if failed or (report["ceiling"] and "error" in report["ceiling"]) else 0


def child(args: argparse.Namespace) -> None:
    """Run one measurement and write its numbers as one JSON line on the real stdout."""
    # Ray and TensorFlow print to stdout; keep it for the result line alone.
    sys.stdout.flush()
    result_out: TextIO = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    result = topology_child(args) if args.child == "topology" else ceiling_child(args)
    result_out.write(json.dumps(result) + "\n")
    result_out.flush()


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--contenders", default=",".join(CONTENDERS), help=f"comma-separated, from {', '.join(CONTENDERS)}"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: grid tiny, 1 round, 8 x 5 results")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="seed", help="topology: bench.py's grid")
    parser.add_argument("--rounds", type=int, default=2, help="topology: rounds of (1 x 2 CPU, 2 x 1 CPU)")
    parser.add_argument("--ceiling-trials", type=int, default=40, help="ceiling: instant trials (x8)")
    parser.add_argument("--ceiling-epochs", type=int, default=50, help="ceiling: results per trial")
    parser.add_argument(
        "--ceiling-cpus",
        type=_int_list,
        default=[2],
        help="ceiling: local Ray CPUs = trials at once, e.g. 2,8",
    )
    parser.add_argument("--ceiling-rounds", type=int, default=2, help="ceiling: rounds of (no-op, real)")
    parser.add_argument(
        "--writers", type=_int_list, default=[1, 4], help="ceiling: writer threads for the write side alone"
    )
    for hidden in ("--child", "--address", "--tracking-uri", "--runs-dir", "--experiment", "--server-pids"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = [c for c in args.contenders if c not in CONTENDERS]
    if unknown:
        parser.error(f"--contenders: unknown {', '.join(unknown)} (allowed: {', '.join(CONTENDERS)})")
    for name in ("rounds", "ceiling_trials", "ceiling_epochs", "ceiling_rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: must be >= 1 (got {getattr(args, name)})")
    for name in ("ceiling_cpus", "writers"):
        if not getattr(args, name) or min(getattr(args, name)) < 1:
            parser.error(f"--{name.replace('_', '-')}: each must be >= 1 (got {getattr(args, name)})")
    if args.quick:
        args.grid, args.rounds = "tiny", 1
        args.ceiling_trials, args.ceiling_epochs, args.ceiling_rounds = 8, 5, 1
    args.topologies = list(TOPOLOGIES)
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
