"""Read a sweep back from MLflow alone: its parent run, the trial table and learning curves."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from mlflow.tracking import MlflowClient

from sweep.store import SweepNotFound, SweepRecord, SweepStore, TrialRecord
from sweep.store.layout import METRICS, SWEEP_ID, SWEEP_STATE, TRIALS_TOTAL, final
from sweep.trial import RunStatus

__all__ = [
    "CURVE_COLUMNS",
    "TRIAL_COLUMNS",
    "SweepNotFound",
    "SweepProgress",
    "SweepRecord",
    "find_sweep",
    "learning_curves",
    "list_sweeps",
    "mlflow_experiment_url",
    "mlflow_run_url",
    "progress_of",
    "sweep_progress",
    "trial_table",
]

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
    "learning_rate",  # the block's: fixed, or drawn from the optimizer's range
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
    "device",
    "error",
]


def find_sweep(client: MlflowClient, sweep_id: str, with_spec: bool = True) -> SweepRecord:
    """The parent run of `sweep_id`, searched across every experiment (`SweepStore.find_sweep`)."""
    return SweepStore(client).find_sweep(sweep_id, with_spec)


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
    return [
        {
            "sweep_id": r.data.tags.get(SWEEP_ID),
            "state": r.data.tags.get(SWEEP_STATE),
            "trials": r.data.tags.get(TRIALS_TOTAL),
            "started": pd.Timestamp(r.info.start_time, unit="ms"),
            "parent_run_id": r.info.run_id,
            "experiment_id": r.info.experiment_id,
        }
        for r in SweepStore(client).parent_runs(limit=limit, newest_first=True)
    ]


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _row(trial: TrialRecord) -> dict[str, Any]:
    """A trial's row of the trial table."""
    config, metrics = trial.config, trial.metrics
    row: dict[str, Any] = {
        "run_id": trial.run_id,
        "trial_id": trial.trial_id,
        "name": trial.name,
        "status": trial.status,
        # A run without its params (its driver died in between) keeps blanks.
        "placement": config.placement if config else None,
        "dropout": config.dropout if config else math.nan,
        "optimizer": config.optimizer if config else None,
        "optimizer_name": trial.optimizer_name,
        "learning_rate": config.learning_rate if config and config.learning_rate is not None else math.nan,
        "seed": config.seed if config else 0,
        "phase": trial.phase,
        "node_ip": trial.node_ip,
        "device": trial.device,
        "error": trial.error,
    }
    for column in TRIAL_COLUMNS:
        if column not in row:
            row[column] = _float(metrics.get(column))
    # Runs recorded before summaries existed still have the histories' last values.
    for m in METRICS:
        if math.isnan(row[final(m)]) and m in metrics:
            row[final(m)] = float(metrics[m])
    return row


def trial_table(client: MlflowClient, record: SweepRecord) -> pd.DataFrame:
    """One row per trial (child run) of the sweep."""
    rows = [_row(trial) for trial in SweepStore(client).trials(record)]
    table = pd.DataFrame(rows, columns=TRIAL_COLUMNS)
    return table.sort_values(["placement", "dropout", "optimizer", "seed"], ignore_index=True)


def learning_curves(client: MlflowClient, run_ids: list[str]) -> pd.DataFrame:
    """Per-epoch metrics of the given runs, long format: run_id, epoch, loss, ..."""
    store = SweepStore(client)
    frames = []
    for run_id in run_ids:
        for epoch, values in sorted(store.metric_history(run_id, METRICS).items()):
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
    trials = SweepStore(client).trials(record)
    statuses = [t.status for t in trials]
    values = [
        t.metrics[final(metric)]
        for t in trials
        if t.status == RunStatus.FINISHED and final(metric) in t.metrics
    ]
    best = (max(values) if mode == "max" else min(values)) if values else None
    failures = tuple((t.name, t.error or "") for t in trials if t.status == RunStatus.FAILED)
    return SweepProgress(
        record,
        statuses.count(RunStatus.FINISHED),
        statuses.count(RunStatus.FAILED),
        statuses.count(RunStatus.RUNNING),
        best,
        failures,
    )
