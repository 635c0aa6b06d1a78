"""The topology contender of scaling.py: the seed grid through run_sweep on one 2-CPU node and on
two 1-CPU nodes, interleaved rounds; throughput and the trial table compared."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import CHILD_ENV
from bench_contenders import grid_spec, trial_key
from scaling_child import spawn
from scaling_meters import TimedClient, latency_stats

TOPOLOGIES = {"1x2": (1, 2), "2x1": (2, 1)}  # name: (nodes, cpus per node)
GOAL_TOPOLOGY_RATIO = 0.9  # two 1-CPU nodes >= 0.9x one 2-CPU node's trials/s


def topology_child(args: argparse.Namespace) -> dict[str, Any]:
    """One sweep through run_sweep on the cluster at --address; the trial table from MLflow."""
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
    trials = _trial_table(args.tracking_uri, args.experiment, result.parent_run_id)
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


def _trial_table(tracking_uri: str, experiment_name: str, parent_run_id: str) -> dict[str, dict[str, Any]]:
    """Each child run of the sweep by its trial key: status, final accuracy, epochs, node, times."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    runs = client.search_runs(
        [experiment.experiment_id],
        f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
        max_results=5000,
    )
    trials: dict[str, dict[str, Any]] = {}
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
    return trials


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
