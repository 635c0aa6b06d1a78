"""The trial table and the learning curves: checked columns, usable trials, placement order."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from sweep.blocks import BLOCK_ORDER
from sweep.spec import PLACEMENTS

ACCURACY_METRICS = ("final_val_accuracy", "final_test_accuracy", "best_val_accuracy", "final_accuracy")
# A block is its dropout, optimizer and learning rate (drawn per block where the optimizer has a
# range); placements are compared within a block and seed.
PAIR_KEYS = ("dropout", "optimizer", "learning_rate", "seed")
NOT_RECORDED = 0.0  # the learning rate of a table that does not say: pairs on the optimizer label alone
REQUIRED_COLUMNS = (
    "run_id",
    "status",
    "placement",
    "dropout",
    "optimizer",
    "seed",
    "final_val_accuracy",
    "best_val_accuracy",
    "final_val_loss",
)


def usable_trials(trials: pd.DataFrame, metric: str = "final_val_accuracy") -> pd.DataFrame:
    """FINISHED trials with a finite `metric` and final validation loss."""
    return trials[usable_mask(trials, metric)]


def has_bn(placement: str) -> bool:
    """Whether a placement's blocks contain a BatchNormalization layer."""
    return "batchnorm" in BLOCK_ORDER.get(placement, ())


def dropout_feeds_bn(placement: str) -> bool:
    """Whether a placement's dropout layer hands its output straight to BatchNormalization."""
    steps = BLOCK_ORDER.get(placement, ())
    return any(a == "dropout" and b == "batchnorm" for a, b in itertools.pairwise(steps))


def clean_trials(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """A typed copy of the trial table, or ValueError naming what is missing."""
    if metric not in ACCURACY_METRICS:
        raise ValueError(f"metric: must be one of {', '.join(ACCURACY_METRICS)} (got {metric!r})")
    needed = (*REQUIRED_COLUMNS, metric)
    missing = [c for c in dict.fromkeys(needed) if c not in trials.columns]
    if missing:
        raise ValueError(f"trials: missing columns {', '.join(missing)} (have {', '.join(trials.columns)})")
    out = trials.copy()
    numeric = [
        "final_val_accuracy",
        "final_test_accuracy",
        "final_val_accuracy_bn_recalibrated",
        "final_test_accuracy_bn_recalibrated",
        "best_val_accuracy",
        "final_val_loss",
        "final_accuracy",
        "final_loss",
        "epochs_completed",
        "duration_s",
        "bn_variance_shift",
        "bn_variance_shift_expected",
        "dropout",
    ]
    for col in numeric:
        if col in out.columns:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    # Grid values can carry float noise after a round trip through a tracking server.
    out["dropout"] = out["dropout"].round(6)
    rates = out["learning_rate"] if "learning_rate" in out.columns else pd.Series(math.nan, index=out.index)
    out["learning_rate"] = pd.to_numeric(rates, errors="coerce").astype(float).fillna(NOT_RECORDED)
    out["placement"] = out["placement"].astype(str)
    out["optimizer"] = out["optimizer"].astype(str)
    out["run_id"] = out["run_id"].astype(str)
    out["status"] = out["status"].astype(str).str.upper()
    for optional in ("bn_variance_shift", "bn_variance_shift_expected"):
        if optional not in out.columns:
            out[optional] = math.nan
    return out


CURVE_VALUES = ("val_accuracy", "accuracy", "val_loss")


def clean_curves(curves: pd.DataFrame | None) -> pd.DataFrame:
    """run_id, epoch and the per-epoch values the analysis reads (NaN where not recorded)."""
    if curves is None or curves.empty or not {"run_id", "epoch", "val_accuracy"} <= set(curves.columns):
        empty = {"run_id": pd.Series(dtype=str), "epoch": pd.Series(dtype=float)}
        return pd.DataFrame(empty | {v: pd.Series(dtype=float) for v in CURVE_VALUES})
    out = curves[["run_id", "epoch"]].copy()
    out["run_id"] = out["run_id"].astype(str)
    out["epoch"] = pd.to_numeric(out["epoch"], errors="coerce").astype(float)
    for value in CURVE_VALUES:
        column = curves[value] if value in curves.columns else math.nan
        out[value] = pd.to_numeric(column, errors="coerce")
        out[value] = out[value].astype(float)
    return out.dropna(subset=["epoch"])


def usable_mask(trials: pd.DataFrame, metric: str) -> pd.Series:
    """FINISHED with a finite `metric` and final validation loss.

    A table that records no loss at all (a trial table from elsewhere, `sweep report --trials`)
    is judged on the metric alone.
    """
    loss = np.isfinite(trials["final_val_loss"].to_numpy(dtype=float))
    finite = np.isfinite(trials[metric].to_numpy(dtype=float)) & (loss | (not loss.any()))
    return (trials["status"] == "FINISHED") & finite


def placement_order(placements: Iterable[str]) -> list[str]:
    """`placements` in the spec's order, unknown names last."""
    known = [p for p in PLACEMENTS if p in set(placements)]
    return known + sorted(set(placements) - set(PLACEMENTS))
