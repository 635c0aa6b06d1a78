"""BN's moving variance against the variance it sees at test time (Li et al. 2019, arXiv:1801.05134).

Dropout with keep probability p = 1 - rate in front of BN makes the variance BN learns in
training differ from the one it meets at test time by (Li et al., section 3)

    ratio = 1/p + (1/p - 1) * c^2 / v

where c and v are the mean and variance of dropout's input. For a centred input that is the
familiar 1/(1 - rate); a ReLU's output (c > 0) gives more. A trial table that carries the formula
evaluated with each channel's measured c and v (`bn_variance_shift_expected`) is checked against
it; without it, 1/(1 - rate) is only the lowest ratio the formula allows. Across trials a ratio is
summarised by its geometric mean with a log-scale interval over seeds (each seed's mean log ratio,
S - 1 df: the trials of one seed share its weights, batches and rows), which one trial inflated by
channels of near-zero test variance moves far less than it moves a plain mean.
"""

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
    ratio: Estimate  # geometric mean of the seeds' geometric means, log-scale interval over seeds
    expected: float | None  # Li et al.'s ratio where dropout feeds BN directly; None elsewhere
    expected_is_lower_bound: bool  # no measured means: `expected` is 1/(1 - rate), the least it can be
    relative: Estimate | None  # measured / expected, over seeds like `ratio`, when `expected` was measured


def li_variance_ratio(rate: float, mean_sq_over_var: float = 0.0) -> float:
    """Li et al.'s train/test variance ratio behind dropout at `rate`, for an input with c^2/v given."""
    keep = 1 - rate
    return 1 / keep + (1 / keep - 1) * mean_sq_over_var


def variance_shifts(usable: pd.DataFrame, order: Sequence[str]) -> tuple[VarianceShift, ...]:
    """One row per placement and dropout rate with a measured ratio."""
    rows = []
    present = usable[np.isfinite(usable["bn_variance_shift"].to_numpy(dtype=float))]
    for placement in order:
        mine = present[present["placement"] == placement]
        for dropout, group in mine.groupby("dropout"):
            rate = float(dropout)
            ratio = Estimate.of_ratio(group["bn_variance_shift"], seeds=group["seed"])
            if not dropout_feeds_bn(placement) or rate >= 1:
                rows.append(VarianceShift(placement, rate, ratio, None, False, None))
                continue
            measured = group["bn_variance_shift_expected"].to_numpy(dtype=float)
            if np.isfinite(measured).any():
                relative = Estimate.of_ratio(
                    group["bn_variance_shift"] / group["bn_variance_shift_expected"], seeds=group["seed"]
                )
                expected = Estimate.of_ratio(measured).mean
                rows.append(VarianceShift(placement, rate, ratio, expected, False, relative))
            else:
                rows.append(VarianceShift(placement, rate, ratio, li_variance_ratio(rate), True, None))
    return tuple(rows)
