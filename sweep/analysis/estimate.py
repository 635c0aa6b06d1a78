"""A mean with its spread and confidence interval: of differences, of accuracies, of ratios.

Given the seed of each value, the values are averaged within each seed first and the interval is
over the S seed means, S - 1 degrees of freedom: one seed fixes the initial weights, the batch
order and (with dataset.split_per_seed) the evaluation rows of every cell, so the trials of one
seed are not independent replicates (docs/statistics.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

# Fewer values than this give no interval: a t-interval from two values spans most of the scale.
MIN_N_FOR_INTERVAL = 3
LEVEL = 0.95

Values = Sequence[float] | pd.Series | np.ndarray
Seeds = Sequence[Any] | pd.Series | pd.Index | np.ndarray  # each value's seed


@dataclass(frozen=True)
class Estimate:
    """Mean, sample SD and a two-sided confidence interval (NaN ends when there is none)."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    level: float = LEVEL

    @classmethod
    def of(cls, values: Values, level: float = LEVEL, seeds: Seeds | None = None) -> Estimate:
        """The mean of the finite `values` with a t-interval at `level`; over seeds when `seeds`
        (each value's seed) is given: `n` is then the seeds, `std` the SD of their means."""
        x = _units(values, seeds)
        n = len(x)
        mean = float(x.mean()) if n else math.nan
        std = float(x.std(ddof=1)) if n >= 2 else math.nan
        if n < MIN_N_FOR_INTERVAL:
            return cls(n, mean, std, math.nan, math.nan, level)
        half = _t(level, n) * std / math.sqrt(n)
        return cls(n, mean, std, mean - half, mean + half, level)

    @classmethod
    def of_accuracy(cls, values: Values, level: float = LEVEL, seeds: Seeds | None = None) -> Estimate:
        """The mean accuracy (fractions) with a t-interval on the logit scale, so it stays in [0, 1];
        over seeds when `seeds` is given.

        The delta method: logit(mean) +- t * SE / (mean * (1 - mean)), mapped back.
        """
        x = _units(values, seeds)
        est = cls.of(x, level)
        if not math.isfinite(est.ci_low):
            return est
        m = est.mean
        if est.std == 0 or m <= 0 or m >= 1:  # every value the same: nothing to spread
            return cls(est.n, m, est.std, m, m, level)
        half = _t(level, est.n) * est.std / math.sqrt(est.n) / (m * (1 - m))
        centre = float(special.logit(m))
        low, high = special.expit([centre - half, centre + half])
        return cls(est.n, m, est.std, float(low), float(high), level)

    @classmethod
    def of_ratio(cls, values: Values, level: float = LEVEL, seeds: Seeds | None = None) -> Estimate:
        """The geometric mean of positive ratios with a t-interval on the log scale; over seeds
        (each seed's mean log ratio) when `seeds` is given.

        `std` is the SD of the logs. One trial with a huge ratio moves it far less than the mean.
        """
        x = np.asarray(values, dtype=float)
        keep = np.isfinite(x) & (x > 0)
        kept_seeds = None if seeds is None else np.asarray(seeds)[keep]
        logs = cls.of(np.log(x[keep]), level, kept_seeds)
        low, high = math.exp(logs.ci_low), math.exp(logs.ci_high)
        return cls(logs.n, math.exp(logs.mean), logs.std, low, high, level)

    @property
    def has_interval(self) -> bool:
        """Whether there were enough values for an interval."""
        return math.isfinite(self.ci_low) and math.isfinite(self.ci_high)

    @property
    def ci_width(self) -> float:
        """High minus low end of the interval."""
        return self.ci_high - self.ci_low


def seed_means(values: Values, seeds: Seeds) -> np.ndarray:
    """The mean of each seed's finite `values` (`seeds` gives each value's seed), in seed order."""
    x = np.asarray(values, dtype=float)
    s = np.asarray(seeds)
    if len(s) != len(x):
        raise ValueError(f"seeds: must give one seed per value (got {len(s)} for {len(x)} values)")
    keep = np.isfinite(x)
    if not keep.any():
        return np.empty(0)
    return pd.Series(x[keep]).groupby(s[keep]).mean().to_numpy(dtype=float)


def _units(values: Values, seeds: Seeds | None) -> np.ndarray:
    """The independent units: each seed's mean when `seeds` is given, else the finite values."""
    if seeds is not None:
        return seed_means(values, seeds)
    x = np.asarray(values, dtype=float)
    return x[np.isfinite(x)]


def _t(level: float, n: int) -> float:
    """The t quantile of a two-sided interval at `level` from `n` values."""
    return float(special.stdtrit(n - 1, 0.5 + level / 2))
