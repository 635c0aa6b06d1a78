"""Read a sweep back from MLflow alone: its parent run, the trial table and learning curves."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from sweep.tracking import ERROR, PHASE, SWEEP_ID, SWEEP_STATE, TRIAL_ID
from sweep.trainable import METRICS

CURVE_COLUMNS = ["run_id", "epoch", *METRICS]  # learning curves, long format: one row per run and epoch

TRIAL_COLUMNS = [
    "run_id",
    "trial_id",
    "name",
    "status",
    "placement",
    "dropout",
    "optimizer",
    "optimizer_name",
    "seed",
    "phase",  # per_placement tuning: tuning | confirmation; empty for other sweeps
    "final_val_accuracy",
    "best_val_accuracy",
    "final_val_loss",
    "best_val_loss",
    "final_accuracy",
    "final_loss",
    "best_epoch",
    "epochs_completed",
    "duration_s",
    "train_time_s",
    "peak_rss_mb",
    "bn_variance_shift",
    "bn_variance_shift_expected",
    "final_test_accuracy",
    "final_test_loss",
    "final_val_accuracy_bn_recalibrated",
    "final_test_accuracy_bn_recalibrated",
    "node_ip",
    "error",
]


class SweepNotFound(LookupError):
    """No parent run carries this sweep id."""


@dataclass(frozen=True)
class SweepRecord:
    """A sweep's parent run as MLflow holds it."""

    sweep_id: str
    parent_run_id: str
    experiment_id: str
    state: str
    status: str
    trials_total: int
    spec_yaml: str | None


def find_sweep(client: MlflowClient, sweep_id: str, with_spec: bool = True) -> SweepRecord:
    """The parent run of `sweep_id`, searched across every experiment.

    Only parent runs carry `sweep.state` (children carry the sweep id too): one small query
    whatever the number of trials.
    """
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,120}", sweep_id):
        raise SweepNotFound(f"{sweep_id!r} is not a sweep id (lowercase letters, digits and dashes)")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs: list[Any] = []
    if experiments:
        runs = list(
            client.search_runs(
                experiments,
                f"tags.`{SWEEP_ID}` = '{sweep_id}' and tags.`{SWEEP_STATE}` != ''",
                max_results=100,
                order_by=["attributes.start_time ASC"],
            )
        )
    parents = [r for r in runs if MLFLOW_PARENT_RUN_ID not in r.data.tags]
    if not parents:
        raise SweepNotFound(f"no sweep with id {sweep_id!r} in {client.tracking_uri}")
    run = parents[0]
    spec_yaml = None
    if with_spec:
        try:
            path = client.download_artifacts(run.info.run_id, "spec.yaml")
            with open(path, encoding="utf-8") as handle:
                spec_yaml = handle.read()
        except Exception:  # an artifact store that is gone should not hide the runs
            spec_yaml = None
    return SweepRecord(
        sweep_id=sweep_id,
        parent_run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        state=run.data.tags.get(SWEEP_STATE, "unknown"),
        status=run.info.status,
        trials_total=int(run.data.tags.get("sweep.trials_total", "0") or 0),
        spec_yaml=spec_yaml,
    )


@dataclass(frozen=True)
class SweepProgress:
    """How far a sweep is, from its runs in MLflow."""

    record: SweepRecord
    finished: int
    failed: int
    running: int
    best: float | None  # the best final value of the strategy metric so far
    failures: tuple[tuple[str, str], ...]  # (run name, error) of every FAILED trial


def sweep_progress(
    client: MlflowClient, sweep_id: str, metric: str = "val_accuracy", mode: str = "max"
) -> SweepProgress:
    """Counts, best value and failures of a sweep's trial runs, for a progress display."""
    return progress_of(client, find_sweep(client, sweep_id, with_spec=False), metric, mode)


def list_sweeps(client: MlflowClient, limit: int = 50) -> list[dict[str, Any]]:
    """The most recent sweeps in the store, newest first."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    runs = client.search_runs(
        experiments,
        f"tags.`{SWEEP_STATE}` != ''",
        max_results=limit,
        order_by=["attributes.start_time DESC"],
    )
    return [
        {
            "sweep_id": r.data.tags.get(SWEEP_ID),
            "state": r.data.tags.get(SWEEP_STATE),
            "trials": r.data.tags.get("sweep.trials_total"),
            "started": pd.Timestamp(r.info.start_time, unit="ms"),
            "parent_run_id": r.info.run_id,
            "experiment_id": r.info.experiment_id,
        }
        for r in runs
        if MLFLOW_PARENT_RUN_ID not in r.data.tags
    ]


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def trial_table(client: MlflowClient, record: SweepRecord) -> pd.DataFrame:
    """One row per trial (child run) of the sweep."""
    runs = client.search_runs(
        [record.experiment_id],
        f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{record.parent_run_id}'",
        max_results=50_000,
    )
    rows = []
    for run in runs:
        params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
        row: dict[str, Any] = {
            "run_id": run.info.run_id,
            "trial_id": tags.get(TRIAL_ID),
            "name": run.info.run_name,
            "status": run.info.status,
            "placement": params.get("placement"),
            "dropout": _float(params.get("dropout")),
            "optimizer": params.get("optimizer.label", params.get("optimizer")),
            "optimizer_name": params.get("optimizer"),
            "seed": int(_float(params.get("seed", 0))) if params.get("seed") else 0,
            "phase": tags.get(PHASE, ""),
            "node_ip": tags.get("ray.node_ip"),
            "error": tags.get(ERROR),
        }
        for column in TRIAL_COLUMNS:
            if column not in row:
                row[column] = _float(metrics.get(column))
        # Runs recorded before summaries existed still have the histories' last values.
        for m in METRICS:
            if math.isnan(row[f"final_{m}"]) and m in metrics:
                row[f"final_{m}"] = float(metrics[m])
        rows.append(row)
    table = pd.DataFrame(rows, columns=TRIAL_COLUMNS)
    return table.sort_values(["placement", "dropout", "optimizer", "seed"], ignore_index=True)


def learning_curves(client: MlflowClient, run_ids: list[str]) -> pd.DataFrame:
    """Per-epoch metrics of the given runs, long format: run_id, epoch, loss, ..."""
    frames = []
    for run_id in run_ids:
        per_epoch: dict[int, dict[str, float]] = {}
        for m in METRICS:
            for point in client.get_metric_history(run_id, m):
                per_epoch.setdefault(point.step, {})[m] = point.value
        for epoch, values in sorted(per_epoch.items()):
            frames.append({"run_id": run_id, "epoch": epoch, **values})
    return pd.DataFrame(frames, columns=CURVE_COLUMNS)


def mlflow_experiment_url(uri: str, experiment_id: str) -> str | None:
    """The runs table of an experiment in the MLflow UI (see `mlflow_run_url`), or None."""
    if not uri.startswith(("http://", "https://")):
        return None
    return f"{uri.rstrip('/')}/#/experiments/{experiment_id}?workflowType=machine_learning"


def mlflow_run_url(uri: str, experiment_id: str, run_id: str) -> str | None:
    """The MLflow UI page of a run, or None when `uri` is not a server (a local store has no UI URL).

    MLflow 3.17's UI opens experiments in its GenAI view; `workflowType=machine_learning` in the
    hash route's query (read by the UI's workflow-type context, and remembered) keeps it on the
    runs view, also when one goes up from the run to its experiment.
    """
    if not uri.startswith(("http://", "https://")):
        return None
    return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def progress_of(
    client: MlflowClient, record: SweepRecord, metric: str = "val_accuracy", mode: str = "max"
) -> SweepProgress:
    """`sweep_progress` for a parent run already found (one query: its trial runs)."""
    runs = client.search_runs(
        [record.experiment_id],
        f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{record.parent_run_id}'",
        max_results=50_000,
    )
    statuses = [r.info.status for r in runs]
    values = [
        r.data.metrics[f"final_{metric}"]
        for r in runs
        if r.info.status == "FINISHED" and f"final_{metric}" in r.data.metrics
    ]
    best = (max(values) if mode == "max" else min(values)) if values else None
    failures = tuple(
        (str(r.info.run_name), str(r.data.tags.get(ERROR, ""))) for r in runs if r.info.status == "FAILED"
    )
    return SweepProgress(
        record,
        statuses.count("FINISHED"),
        statuses.count("FAILED"),
        statuses.count("RUNNING"),
        best,
        failures,
    )
