"""Epochs to a target validation accuracy."""

from __future__ import annotations

import math

import pandas as pd

DEFAULT_TARGET_SHARE = 0.95


def epochs_to_target(curves: pd.DataFrame, run_ids: pd.Series, target: float) -> pd.DataFrame:
    """Per run with curves: the first epoch at or above `target` (NaN if never) and the last."""
    c = curves[curves["run_id"].isin(set(run_ids))]
    if c.empty or not math.isfinite(target):
        return pd.DataFrame({"reached": pd.Series(dtype=float), "last": pd.Series(dtype=float)})
    by_run = c.groupby("run_id")["epoch"]
    reached = c[c["val_accuracy"] >= target - 1e-9].groupby("run_id")["epoch"].min()
    return pd.DataFrame({"reached": reached.reindex(by_run.max().index), "last": by_run.max()})
