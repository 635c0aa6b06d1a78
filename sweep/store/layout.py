"""The MLflow layout of a sweep: every tag, param, metric and artifact name its runs carry.

A sweep is one parent run; each trial is one child run (`PARENT_RUN` names its parent). Only the
parent carries `SWEEP_STATE`, so a query for it stays small whatever the number of trials. A
trial's params are its configuration (`sweep.trial.TrialConfig.to_params`); the reproducibility
tags are `sweep.reproducibility`'s.

Plain names only: a Ray worker imports the metric schema from here without importing MLflow.
"""

from __future__ import annotations

from typing import Any

# --- tags of every run of a sweep -----------------------------------------------------------------
PARENT_RUN = "mlflow.parentRunId"  # MLflow's MLFLOW_PARENT_RUN_ID, on child runs only
SWEEP_ID = "sweep.id"
ERROR = "error"  # why a run failed (one line); a trial's traceback is the ERROR_ARTIFACT

# --- the parent run -------------------------------------------------------------------------------
SWEEP_NAME = "sweep.name"
SWEEP_STATE = "sweep.state"  # queued | running | finished | interrupted | cancelled | failed
STATE_QUEUED = "queued"  # SWEEP_STATE of a parent run whose job has not started
STATE_CANCELLED = "cancelled"  # SWEEP_STATE of a sweep cancelled while queued: it never ran
TRIALS_TOTAL = "sweep.trials_total"  # the spec's trial count
JOB_TAG = "ray.job_submission_id"  # while a Ray job drives the sweep
BEST_PLACEMENT = "sweep.best_placement"  # the published report's
NOTE = "mlflow.note.content"  # the run's description in the MLflow UI: the verdict
METRIC_PARAM = "strategy.metric"  # parent params (the spec, flattened) that readers use
MODE_PARAM = "strategy.mode"
SPEC_ARTIFACT = "spec.yaml"
REPORT_DIR = "report"  # artifact folder of the published report


def trials_count_tag(outcome: str) -> str:
    """The parent's count of child runs that ended `outcome` (finished, failed)."""
    return f"sweep.trials_{outcome}"


# --- a trial's child run --------------------------------------------------------------------------
TRIAL_ID = "trial.id"  # Ray Tune's trial id
ATTEMPTS = "trial.attempts"  # 1 + the attempts lost with their worker or node
FAILURE = "trial.failure"  # infrastructure | diverged | error (sweep.failures)
PHASE = "trial.phase"  # per_placement tuning: tuning | confirmation (sweep.trial.Phase)
STOPPED_EARLY = "trial.stopped_early"  # "true" when a scheduler stopped it before the last epoch
MODEL_BUILDER = "model.builder"  # kind python: the builder's REF, as the sweep's spec.yaml names it
MODEL_ARGS = "model.args"  # kind python: its keyword arguments from the spec, as JSON
# Where a trial ran, by the name its results carry: the node, the process, the GPUs Ray gave it
# (comma-separated ids; absent for none) and what TensorFlow trained on (the GPUs' names, or cpu).
NODE_TAGS = {
    "node_id": "ray.node_id",
    "node_ip": "ray.node_ip",
    "hostname": "ray.hostname",
    "pid": "ray.pid",
    "gpu_ids": "ray.gpu_ids",
    "device": "trial.device",
}
ERROR_ARTIFACT = "error.txt"


def attempt_tag(attempt: int, what: str) -> str:
    """A lost attempt's `error` or `node_id`, kept on the run of the trial that ran again."""
    return f"trial.attempt_{attempt}.{what}"


# --- a trial's metrics ----------------------------------------------------------------------------
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")  # every epoch, step = epoch
TEST_METRICS = ("test_loss", "test_accuracy")  # the last epoch only (or each, where ASHA may stop)
# Results a trial's run keeps only as summaries (by these names) from the last epoch it reported
# (`trial_summary`): the test split judges the final model only, not each epoch's,
# and the rest are measured once, after the last epoch.
LAST_RESULTS = {
    "test_loss": "final_test_loss",
    "test_accuracy": "final_test_accuracy",
    "bn_variance_shift": "bn_variance_shift",
    "bn_variance_shift_expected": "bn_variance_shift_expected",
    "val_accuracy_bn_recalibrated": "final_val_accuracy_bn_recalibrated",
    "test_accuracy_bn_recalibrated": "final_test_accuracy_bn_recalibrated",
}
# Summaries at step 0, besides final_<m> and best_<m> of every m in METRICS.
BEST_EPOCH = "best_epoch"
EPOCHS_COMPLETED = "epochs_completed"
DURATION = "duration_s"  # Tune's time_total_s
MEASURED = ("train_time_s", "peak_rss_mb")  # the worker's, by the same name


def final(metric: str) -> str:
    """The summary of `metric`'s last epoch."""
    return f"final_{metric}"


def best(metric: str) -> str:
    """The summary of `metric`'s best epoch (highest accuracy, lowest loss)."""
    return f"best_{metric}"


def trial_summary(history: list[dict[str, Any]]) -> dict[str, float]:
    """A trial's summaries (at step 0) from the results of the epochs it reported: final_<m> and
    best_<m> of every m in METRICS, the best epoch, the epochs completed, and the last epoch's
    LAST_RESULTS, MEASURED and duration."""
    if not history:
        return {}
    summary: dict[str, float] = {}
    last = history[-1]
    for m in METRICS:
        values = [r[m] for r in history if m in r]
        if values:
            summary[final(m)] = float(values[-1])
            summary[best(m)] = float(max(values) if "accuracy" in m else min(values))
    accs = [r.get("val_accuracy", float("nan")) for r in history]
    summary[BEST_EPOCH] = float(history[accs.index(max(accs))].get("epoch", 0))
    summary[EPOCHS_COMPLETED] = float(last.get("epoch", len(history)))
    kept = {"time_total_s": DURATION} | {k: k for k in MEASURED} | LAST_RESULTS
    summary |= {name: float(last[key]) for key, name in kept.items() if key in last}
    return summary
