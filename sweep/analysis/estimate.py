"""A mean with its spread and confidence interval."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class Estimate:
    """Mean, sample SD and two-sided 95% t confidence interval of the finite values given."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float

    @classmethod
    def of(cls, values: Sequence[float] | pd.Series | np.ndarray) -> Estimate:
        """The estimate over `values`; NaN where too few values to say."""
        x = np.asarray(values, dtype=float)
        x = x[np.isfinite(x)]
        n = len(x)
        if n == 0:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        mean = float(x.mean())
        if n == 1:
            return cls(1, mean, math.nan, math.nan, math.nan)
        std = float(x.std(ddof=1))
        half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
        return cls(n, mean, std, mean - half, mean + half)

    @property
    def ci_width(self) -> float:
        """High minus low end of the interval."""
        return self.ci_high - self.ci_low
