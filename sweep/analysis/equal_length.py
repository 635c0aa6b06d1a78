"""Trials of unequal length (ASHA stopped some early) compared at the epoch every one reached.

A stopped trial's last accuracy is an earlier point of training than a finished one's; comparing
the two mixes the placement's effect with the scheduler's decisions. So when usable trials differ
in length, every accuracy and loss is read off the learning curves at the shortest length, the
rung all of them reached, and time to target is followed up to that epoch only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class EqualLength:
    """The common length the trials were compared at."""

    epoch: int  # every usable trial trained at least this many epochs
    longest: int
    n_stopped: int  # usable trials that ended before the longest
    n_without_curve: int  # usable trials left out: no curve up to `epoch`


def at_equal_length(
    usable: pd.DataFrame, curves: pd.DataFrame, metric: str
) -> tuple[pd.DataFrame, EqualLength | None]:
    """`usable` with its metrics at the epoch all trials reached, or unchanged when all are as long."""
    if "epochs_completed" not in usable.columns:
        return usable, None
    lengths = usable["epochs_completed"].to_numpy(dtype=float)
    lengths = lengths[np.isfinite(lengths)]
    if len(lengths) == 0 or lengths.min() == lengths.max():
        return usable, None
    epoch, longest = int(lengths.min()), int(lengths.max())
    mine = curves[curves["run_id"].isin(set(usable["run_id"])) & (curves["epoch"] <= epoch)]
    at = mine[mine["epoch"] == epoch].drop_duplicates("run_id").set_index("run_id")
    out = usable.copy()
    ids = out["run_id"]
    out["final_val_accuracy"] = ids.map(at["val_accuracy"])
    out["best_val_accuracy"] = ids.map(mine.groupby("run_id")["val_accuracy"].max())
    out["final_accuracy"] = ids.map(at["accuracy"])
    out["final_val_loss"] = ids.map(at["val_loss"])
    keep = np.isfinite(out[metric].to_numpy(dtype=float))
    if at["val_loss"].notna().any():  # a loss recorded per epoch must be finite too
        keep &= np.isfinite(out["final_val_loss"].to_numpy(dtype=float))
    else:
        out["final_val_loss"] = usable["final_val_loss"]
    stopped = int((usable["epochs_completed"] < longest).sum())
    return out[keep], EqualLength(epoch, longest, stopped, int((~keep).sum()))


def truncate(curves: pd.DataFrame, equal: EqualLength | None) -> pd.DataFrame:
    """The curves up to the common epoch, when there is one."""
    return curves if equal is None else curves[curves["epoch"] <= equal.epoch]


def describe(equal: EqualLength) -> str:
    """One sentence on how unequal lengths were handled."""
    missing = (
        f"; {equal.n_without_curve} trial(s) without a curve up to that epoch are left out"
        if equal.n_without_curve
        else ""
    )
    return (
        f"{equal.n_stopped} usable trials stopped before epoch {equal.longest} (an early-stopping "
        f"scheduler such as ASHA): every accuracy and loss here is taken at epoch {equal.epoch}, the "
        f"length all trials reached, and time to target is followed to epoch {equal.epoch}{missing}."
    )
