"""Epochs to a target validation accuracy, with trials that never got there censored.

A trial that never reached the target is right-censored at its last epoch: all we know is that
it would have needed more. Per placement, the Kaplan-Meier curve (scipy.stats.ecdf on
CensoredData) gives the median epochs and the restricted mean: the mean epochs to target counted
within the horizon (the last epoch observed), where a trial that never got there counts the
whole horizon. Where only the slower side has censored trials, the restricted difference
understates the true one, so it is reported as a bound ("at least N epochs sooner").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from sweep.analysis.estimate import Estimate
from sweep.analysis.formatting import format_interval, format_nonzero, format_number
from sweep.analysis.trials import PAIR_KEYS, has_bn

DEFAULT_TARGET_SHARE = 0.95


@dataclass(frozen=True)
class TimeToTarget:
    """Epochs to the target over one placement's FINISHED trials with curves."""

    n: int
    n_reached: int
    horizon: float  # the last epoch observed; NaN without curves
    median: float  # Kaplan-Meier median; NaN when fewer than half got there
    restricted_mean: float  # area under the Kaplan-Meier curve up to the horizon

    @property
    def reached_share(self) -> float:
        """Share of the trials that reached the target."""
        return self.n_reached / self.n if self.n else math.nan


@dataclass(frozen=True)
class TimeDifference:
    """Restricted mean epochs to target of the BN placements minus none, paired per key and
    judged by seed (the mean of each seed's paired differences, S - 1 df: estimate.py)."""

    diff: Estimate  # epochs, over seeds; negative: BN placements get there sooner
    horizon: float
    bn_censored: int  # BN trials among the pairs that never reached the target
    none_censored: int
    pairs: int = 0  # matched keys behind the per-seed means

    @property
    def is_bound(self) -> bool:
        """Whether only one side has censored trials, so the true gap is larger than this one."""
        return (self.bn_censored > 0) != (self.none_censored > 0)


def first_epochs(curves: pd.DataFrame, run_ids: pd.Series, target: float) -> pd.DataFrame:
    """Per run with curves: `epochs` (the first at or above `target`, else the last), `reached`."""
    c = curves[curves["run_id"].isin(set(run_ids)) & curves["val_accuracy"].notna()]
    if c.empty or not math.isfinite(target):
        return pd.DataFrame({"epochs": pd.Series(dtype=float), "reached": pd.Series(dtype=bool)})
    last = c.groupby("run_id")["epoch"].max()
    first = c[c["val_accuracy"] >= target - 1e-9].groupby("run_id")["epoch"].min().reindex(last.index)
    return pd.DataFrame({"epochs": first.fillna(last), "reached": first.notna()})


def time_to_target(times: pd.DataFrame, horizon: float) -> TimeToTarget:
    """Kaplan-Meier median and restricted mean of `times` (rows of `first_epochs`)."""
    if times.empty or not math.isfinite(horizon):
        return TimeToTarget(len(times), int(times["reached"].sum()), horizon, math.nan, math.nan)
    epochs = times["epochs"].to_numpy(dtype=float)
    reached = times["reached"].to_numpy(dtype=bool)
    sf = stats.ecdf(stats.CensoredData(uncensored=epochs[reached], right=epochs[~reached])).sf
    at, survival = sf.quantiles, sf.probabilities
    below = np.flatnonzero(survival <= 0.5)
    median = float(at[below[0]]) if len(below) else math.nan
    # The area under the step curve: 1 before the first time, survival[i] from at[i] on.
    steps = np.concatenate([[0.0], np.minimum(at, horizon), [horizon]])
    heights = np.concatenate([[1.0], survival])
    restricted = float(np.sum(heights * np.diff(steps)))
    return TimeToTarget(len(times), int(reached.sum()), horizon, median, restricted)


def bn_vs_none(
    finished: pd.DataFrame, times: pd.DataFrame, horizon: float, keys: Sequence[str] = PAIR_KEYS
) -> TimeDifference | None:
    """BN placements (their mean per key) minus none in restricted epochs, or None without both."""
    rows = finished[finished["run_id"].isin(set(times.index))].copy()
    if rows.empty or not math.isfinite(horizon):
        return None
    rows["bn"] = rows["placement"].map(has_bn).astype(bool)
    if rows["bn"].all() or not rows["bn"].any():
        return None
    t = times.reindex(rows["run_id"])
    observed_to_horizon = t["reached"].to_numpy() | (t["epochs"].to_numpy() >= horizon)
    # A trial whose curve stops short of the horizon without reaching the target has no restricted
    # time; with equal lengths (see equal_length.py) there is none.
    restricted = np.minimum(t["epochs"].to_numpy(dtype=float), horizon)
    rows["restricted"] = np.where(observed_to_horizon, restricted, math.nan)
    rows["censored"] = ~t["reached"].to_numpy()
    keys = list(keys)
    per_key = rows.groupby([*keys, "bn"])["restricted"].mean().unstack("bn").dropna()
    if per_key.empty:
        return None
    paired_keys = rows.set_index(keys).index.isin(per_key.index)
    counted = rows[paired_keys]
    diffs = per_key[True] - per_key[False]
    return TimeDifference(
        diff=Estimate.of(diffs, seeds=diffs.index.get_level_values("seed")),
        horizon=horizon,
        bn_censored=int(counted.loc[counted["bn"], "censored"].sum()),
        none_censored=int(counted.loc[~counted["bn"], "censored"].sum()),
        pairs=len(diffs),
    )


def describe_difference(td: TimeDifference, target: float) -> str:
    """The BN-vs-none gap in words, as a bound where only one side has censored trials."""
    d = td.diff
    goal = f"{format_number(target * 100, 0)}% validation accuracy"
    n = f"n = {d.n} seed(s) ({td.pairs} pairs)"
    ci = f", 95% CI {format_interval(d)}, {n}" if d.has_interval else f", {n}, too few seeds for an interval"
    numbers = (
        f"restricted mean difference {format_number(d.mean, signed=True)} epochs within "
        f"{format_number(td.horizon, 0)}{ci}"
    )
    censored = (
        f"; {td.none_censored} none and {td.bn_censored} BN trial(s) never reached it and count "
        f"as {format_number(td.horizon, 0)} epochs"
        if td.none_censored or td.bn_censored
        else ""
    )
    if not d.has_interval or (d.ci_low <= 0 <= d.ci_high):
        return (
            f"The sweep cannot tell whether BN placements reach {goal} sooner than none "
            f"({numbers}{censored})."
        )
    sooner = d.ci_high < 0
    direction = "sooner" if sooner else "later"
    # The interval end nearest 0 is what the data guarantees at 95%.
    least = -d.ci_high if sooner else d.ci_low
    if td.is_bound and (td.none_censored > 0) == sooner:
        return (
            f"BN placements reach {goal} at least {format_nonzero(least)} epochs {direction} than none "
            f"on average ({numbers}{censored}, so the true gap is larger)."
        )
    return (
        f"BN placements reach {goal} {format_number(abs(d.mean))} epochs {direction} than none on "
        f"average within the first {format_number(td.horizon, 0)} epochs ({numbers}{censored})."
    )
