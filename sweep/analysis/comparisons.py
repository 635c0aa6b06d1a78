"""Paired comparisons between placements: differences, tests, multiplicity, outcome, sample size."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from sweep.analysis.estimate import Estimate
from sweep.analysis.trials import PAIR_KEYS

ALPHA = 0.05
MIN_PAIRS = 3
RESOLUTION_POINTS = 1.0  # the smallest difference worth resolving (EVIDENCE.md, "Noise")
MAX_CI_WIDTH_POINTS = 2.0  # a wider interval cannot rule out a 1-point difference either way
_Z_POWER = 1.96 + 0.84  # two-sided alpha 0.05 at 80% power

Outcome = Literal["better", "worse", "indistinguishable", "cannot tell"]


@dataclass(frozen=True)
class Comparison:
    """One placement against a reference, paired on dropout, optimizer and seed."""

    placement: str
    reference: str
    diff: Estimate  # placement - reference, percentage points
    n_seeds: int  # distinct seeds among the pairs
    p_value: float  # paired t-test; NaN with fewer than 2 pairs or no variance
    p_holm: float  # Holm-adjusted across the comparisons with the reference
    effect_size: float  # Cohen's d_z: mean difference / SD of the differences
    outcome: Outcome
    power_sd: float  # SD of a paired difference (points) used for the sample size; NaN if none
    pairs_needed: int | None  # to resolve a 1-point difference at 80% power
    seeds_needed: int | None

    @property
    def n_pairs(self) -> int:
        """Number of matched pairs."""
        return self.diff.n


def paired(
    data: pd.DataFrame, placement: str, reference: str, value: str, scale: float = 100.0
) -> tuple[pd.Series, int]:
    """`placement - reference` per matched (dropout, optimizer, seed), and the seeds involved.

    Repeated trials of one grid point are averaged first so each key pairs once.
    """
    keys = list(PAIR_KEYS)
    a = data[data["placement"] == placement].groupby(keys)[value].mean()
    b = data[data["placement"] == reference].groupby(keys)[value].mean()
    joined = pd.concat({"a": a, "b": b}, axis=1, join="inner").dropna()
    diffs = (joined["a"] - joined["b"]) * scale
    seeds = diffs.index.get_level_values("seed").nunique() if len(diffs) else 0
    return diffs, int(seeds)


def _paired_p(diffs: pd.Series) -> float:
    x = diffs.to_numpy(dtype=float)
    if len(x) < 2 or not np.std(x) > 1e-12:
        return math.nan
    return float(stats.ttest_1samp(x, 0.0).pvalue)  # the same as ttest_rel on the pairs


def holm(p_values: Sequence[float]) -> list[float]:
    p = np.asarray(p_values, dtype=float)
    out = np.full(len(p), math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx])]):
        running = max(running, min(1.0, (len(idx) - rank) * p[i]))
        out[i] = running
    return out.tolist()


def fallback_sd(usable: pd.DataFrame, metric: str) -> float:
    """SD of a difference of two independent trials, from the spread within placements (points).

    Used only when too few pairs measure the paired SD; it includes the dropout and optimizer
    effects, so the sample size it gives errs on the large side.
    """
    if len(usable) < 2:
        return math.nan
    resid = usable[metric] - usable.groupby("placement")[metric].transform("mean")
    dof = len(usable) - usable["placement"].nunique()
    if dof < 1:
        return math.nan
    return float(math.sqrt(2 * float((resid**2).sum()) / dof) * 100)


def _sample_size(sd: float, cells: int) -> tuple[int | None, int | None]:
    if not math.isfinite(sd) or sd <= 0:
        return None, None
    pairs = max(MIN_PAIRS, math.ceil((_Z_POWER * sd / RESOLUTION_POINTS) ** 2))
    return pairs, max(2, math.ceil(pairs / cells))


def compare_all(
    usable: pd.DataFrame,
    best: str | None,
    order: Sequence[str],
    metric: str,
    cells: int,
    fallback_sd: float,
) -> tuple[Comparison, ...]:
    if best is None:
        return ()
    others = [p for p in order if p != best and (usable["placement"] == p).any()]
    by_placement = {p: paired(usable, p, best, metric) for p in others}
    p_values = [_paired_p(by_placement[p][0]) for p in others]
    adjusted = holm(p_values)
    out = []
    for p, p_value, p_holm in zip(others, p_values, adjusted, strict=True):
        diffs, seeds = by_placement[p]
        diff = Estimate.of(diffs)
        power_sd = diff.std if math.isfinite(diff.std) and diff.std > 0 else fallback_sd
        pairs_needed, seeds_needed = _sample_size(power_sd, cells)
        effect = diff.mean / diff.std if diff.n >= 2 and diff.std > 0 else math.nan
        out.append(
            Comparison(
                placement=p,
                reference=best,
                diff=diff,
                n_seeds=seeds,
                p_value=p_value,
                p_holm=p_holm,
                effect_size=effect,
                outcome=_outcome(diff, p_holm),
                power_sd=power_sd,
                pairs_needed=pairs_needed,
                seeds_needed=seeds_needed,
            )
        )
    return tuple(out)


def _outcome(diff: Estimate, p_holm: float) -> Outcome:
    if diff.n < MIN_PAIRS or not math.isfinite(p_holm):
        return "cannot tell"
    if p_holm < ALPHA and (diff.ci_high < 0 or diff.ci_low > 0):
        return "worse" if diff.mean < 0 else "better"
    if diff.ci_width > MAX_CI_WIDTH_POINTS:
        return "cannot tell"
    return "indistinguishable"
