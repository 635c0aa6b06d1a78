"""BN's moving variance against the variance it sees at test time (Li et al. 2019)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sweep.analysis.estimate import Estimate
from sweep.analysis.trials import dropout_feeds_bn


@dataclass(frozen=True)
class VarianceShift:
    """BN moving variance / test-time variance of one placement at one dropout rate."""

    placement: str
    dropout: float
    ratio: Estimate
    expected: float | None  # 1/(1-rate) where dropout feeds BN directly; None elsewhere


def variance_shifts(usable: pd.DataFrame, order: Sequence[str]) -> tuple[VarianceShift, ...]:
    rows = []
    present = usable[np.isfinite(usable["bn_variance_shift"].to_numpy(dtype=float))]
    for placement in order:
        mine = present[present["placement"] == placement]
        for dropout, group in mine.groupby("dropout"):
            rate = float(dropout)
            expected = 1 / (1 - rate) if dropout_feeds_bn(placement) and rate < 1 else None
            rows.append(VarianceShift(placement, rate, Estimate.of(group["bn_variance_shift"]), expected))
    return tuple(rows)
