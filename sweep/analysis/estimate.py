"""A mean with its spread and confidence interval: of differences, of accuracies, of ratios."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

# Fewer values than this give no interval: a t-interval from two values spans most of the scale.
MIN_N_FOR_INTERVAL = 3
LEVEL = 0.95

Values = Sequence[float] | pd.Series | np.ndarray


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
    def of(cls, values: Values, level: float = LEVEL) -> Estimate:
        """The mean of the finite `values` with a t-interval at `level`."""
        x = _finite(values)
        n = len(x)
        mean = float(x.mean()) if n else math.nan
        std = float(x.std(ddof=1)) if n >= 2 else math.nan
        if n < MIN_N_FOR_INTERVAL:
            return cls(n, mean, std, math.nan, math.nan, level)
        half = _t(level, n) * std / math.sqrt(n)
        return cls(n, mean, std, mean - half, mean + half, level)

    @classmethod
    def of_accuracy(cls, values: Values, level: float = LEVEL) -> Estimate:
        """The mean accuracy (fractions) with a t-interval on the logit scale, so it stays in [0, 1].

        The delta method: logit(mean) +- t * SE / (mean * (1 - mean)), mapped back.
        """
        x = _finite(values)
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
    def of_ratio(cls, values: Values, level: float = LEVEL) -> Estimate:
        """The geometric mean of positive ratios with a t-interval on the log scale.

        `std` is the SD of the logs. One trial with a huge ratio moves it far less than the mean.
        """
        x = _finite(values)
        x = x[x > 0]
        logs = cls.of(np.log(x), level)
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


def _finite(values: Values) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    return x[np.isfinite(x)]


def _t(level: float, n: int) -> float:
    """The t quantile of a two-sided interval at `level` from `n` values."""
    return float(special.stdtrit(n - 1, 0.5 + level / 2))
