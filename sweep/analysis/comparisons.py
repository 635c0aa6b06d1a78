"""Paired comparisons between placements, and the one rule that turns an interval into an answer.

The seed is the unit of replication: one seed fixes the initial weights, the batch order and (with
dataset.split_per_seed) the evaluation rows of every cell, so the paired differences of one seed
are correlated. A comparison therefore averages its differences within each seed and runs a
one-sample t on those S per-seed means, S - 1 degrees of freedom (docs/statistics.md: why this
method, its measured coverage). Pairs only sharpen each seed's mean.

The printed verdict spends ALPHA once (see `ALPHA_OVERALL`, `ALPHA_CELLS`): the overall
comparisons share ALPHA_OVERALL through Bonferroni simultaneous intervals, each at level
1 - ALPHA_OVERALL/k over the k testable comparisons, and p-values adjusted to match (p_adjusted <
ALPHA_OVERALL exactly when the interval excludes 0). `classify` reads the outcome off an interval
alone, for the verdict, the adaptive looks and the EVIDENCE checks alike.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

from sweep.analysis import estimate
from sweep.analysis.estimate import MIN_N_FOR_INTERVAL, Estimate
from sweep.analysis.trials import PAIR_KEYS

ALPHA = 0.05  # every claim the printed verdict makes, together
ALPHA_OVERALL = ALPHA / 2  # the overall comparisons
ALPHA_CELLS = ALPHA / 2  # the interaction tests and the per-cell claims they gate (interactions.py)
POWER = 0.8
MIN_SEEDS = MIN_N_FOR_INTERVAL  # a call needs this many seeds, and spread among them
DEFAULT_MARGIN = 1.0  # points: EVIDENCE.md, "Noise"

Outcome = Literal["better", "worse", "equivalent", "cannot tell"]


@dataclass(frozen=True)
class Comparison:
    """One placement against a reference, paired on dropout, optimizer and seed, judged by seed."""

    placement: str
    reference: str
    # placement - reference in points: the mean of the per-seed mean differences (n = seeds, std =
    # their SD); its interval is the family's simultaneous one
    diff: Estimate
    n_seeds: int  # distinct seeds among the pairs
    family: int  # testable comparisons corrected together; the level is 1 - ALPHA_OVERALL/family
    p_value: float  # one-sample t on the per-seed means; NaN when not testable
    p_adjusted: float  # Bonferroni over the family
    effect_size: float  # mean / SD of the per-seed means
    margin: float  # points: differences inside +-margin count as equivalent
    outcome: Outcome
    power_sd: float  # SD of a per-seed mean difference (points) used for the sample size; NaN if none
    pairs_needed: int | None  # seeds_needed x the pairs a seed adds
    seeds_needed: int | None  # to resolve a margin-sized difference at 80% power; None once decided
    pairs: int = 0  # matched (dropout, optimizer, seed) pairs behind the per-seed means
    # Share of the paired differences' variance (after each cell's mean) that their seed explains
    # (one-way random-effects ANOVA, clipped at 0); NaN with fewer than 2 seeds of 2 cells.
    intra_seed_correlation: float = math.nan
    alpha: float = ALPHA_OVERALL  # the error rate this comparison's family shares

    @property
    def n_pairs(self) -> int:
        """Number of matched pairs."""
        return self.pairs

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly on one side of 0."""
        return self.diff.has_interval and (self.diff.ci_high < 0 or self.diff.ci_low > 0)

    @property
    def beyond_margin(self) -> bool:
        """Whether the interval lies wholly outside +-margin: a difference larger than the margin."""
        d = self.diff
        return d.has_interval and (d.ci_low >= self.margin or d.ci_high <= -self.margin)


def classify(diff: Estimate, margin: float) -> Outcome:
    """The rule: inside +-margin is equivalent; else wholly below or above 0 is worse or better.

    An interval inside the margin is equivalent even when it excludes 0: a real difference, but
    smaller than what was declared to matter.
    """
    if diff.n < MIN_SEEDS or not diff.has_interval or not diff.std > 0:
        return "cannot tell"
    if -margin < diff.ci_low and diff.ci_high < margin:
        return "equivalent"
    if diff.ci_high < 0:
        return "worse"
    if diff.ci_low > 0:
        return "better"
    return "cannot tell"


@dataclass(frozen=True)
class Tested:
    """One difference of a family: its simultaneous estimate and raw and adjusted p-values."""

    diff: Estimate
    p_value: float
    p_adjusted: float
    family: int


def simultaneous(diffs: Sequence[np.ndarray | pd.Series], alpha: float = ALPHA_OVERALL) -> list[Tested]:
    """Bonferroni simultaneous intervals and adjusted p-values over one family, each member given
    as its independent units (per-seed mean differences)."""
    arrays = [np.asarray(d, dtype=float) for d in diffs]
    testable = [i for i, x in enumerate(arrays) if len(x) >= MIN_SEEDS and np.std(x) > 1e-12]
    k = max(1, len(testable))
    level = 1 - alpha / k
    p = np.full(len(arrays), math.nan)
    p_adj = np.full(len(arrays), math.nan)
    if testable:
        p[testable] = [paired_t_p(arrays[i]) for i in testable]
        p_adj[testable] = multipletests(p[testable], alpha=alpha, method="bonferroni")[1]
    k_tested = len(testable)
    return [
        Tested(Estimate.of(x, level), float(p[i]), float(p_adj[i]), k_tested) for i, x in enumerate(arrays)
    ]


def paired_t_p(diffs: np.ndarray) -> float:
    """Two-sided p of the paired t-test on `diffs`: scipy's ttest_1samp against 0, as a formula.

    The same number without ttest_1samp's per-call overhead (milliseconds), which the 2000-sweep
    error-rate simulation in the tests would pay a few thousand times.
    """
    n = len(diffs)
    t = float(np.mean(diffs)) / (float(np.std(diffs, ddof=1)) / math.sqrt(n))
    return float(2 * special.stdtr(n - 1, -abs(t)))


def comparison_pairs(placements: Sequence[str], reference: str) -> list[tuple[str, str]]:
    """(placement, reference) pairs: each against `reference`, or every pair when it is "all"."""
    if reference == "all":
        return [(b, a) for a, b in itertools.combinations(placements, 2)]
    if reference not in placements:
        return []
    return [(p, reference) for p in placements if p != reference]


def paired(
    data: pd.DataFrame,
    placement: str,
    reference: str,
    value: str,
    scale: float = 100.0,
    keys: Sequence[str] = PAIR_KEYS,
) -> tuple[pd.Series, int]:
    """`placement - reference` per matched `keys` (dropout, optimizer, seed), and the seeds involved.

    Repeated trials of one key are averaged first so each key pairs once. Per-placement tuning
    pairs on the seed alone: each placement ran at its own block (see tuning.py).
    """
    keys = list(keys)
    a = data[data["placement"] == placement].groupby(keys)[value].mean()
    b = data[data["placement"] == reference].groupby(keys)[value].mean()
    joined = pd.concat({"a": a, "b": b}, axis=1, join="inner").dropna()
    diffs = (joined["a"] - joined["b"]) * scale
    seeds = diffs.index.get_level_values("seed").nunique() if len(diffs) else 0
    return diffs, int(seeds)


def seed_means(diffs: pd.Series) -> np.ndarray:
    """The mean paired difference of each seed: the comparison's independent units."""
    return estimate.seed_means(diffs, diffs.index.get_level_values("seed"))


def intra_seed_correlation(diffs: pd.Series) -> float:
    """The share of the differences' variance, after each cell's mean, that is shared within a seed.

    One-way random-effects ANOVA of the cell-centred differences on their seed: sigma_b^2 =
    (MSB - MSW) / k0 clipped at 0, ICC = sigma_b^2 / (sigma_b^2 + MSW), k0 the (adjusted) cells per seed.
    """
    if len(diffs) < 4 or diffs.index.nlevels < 2:
        return math.nan
    cell_keys = [k for k in diffs.index.names if k != "seed"]
    resid = diffs - diffs.groupby(level=cell_keys).transform("mean")
    seeds = resid.index.get_level_values("seed")
    groups = resid.groupby(seeds)
    sizes = groups.size().to_numpy(dtype=float)
    a, n = len(sizes), float(sizes.sum())
    if a < 2 or n - a < 1:
        return math.nan
    means = groups.mean().to_numpy(dtype=float)
    msb = float(np.sum(sizes * (means - float(resid.mean())) ** 2)) / (a - 1)
    msw = float(np.sum((resid.to_numpy() - groups.transform("mean").to_numpy()) ** 2)) / (n - a)
    k0 = (n - float(np.sum(sizes**2)) / n) / (a - 1)
    between = max(0.0, (msb - msw) / k0)
    total = between + msw
    return between / total if total > 1e-12 else math.nan


def compare(
    groups: Sequence[tuple[pd.DataFrame, str, str]],
    metric: str,
    margin: float,
    cells: int = 1,
    fallback_sd: float = math.nan,
    keys: Sequence[str] = PAIR_KEYS,
) -> tuple[Comparison, ...]:
    """Each (trials, placement, reference) as one family of paired comparisons, matched on `keys`
    and judged on their per-seed means.

    `cells` (pairs a seed adds) and `fallback_sd` (SD of one pair) only size the sweep that would
    resolve them; with fewer than 2 seeds the SD of one pair stands in for a seed's mean, which
    errs on the large side.
    """
    matched = [paired(data, p, ref, metric, keys=keys) for data, p, ref in groups]
    tested = simultaneous([seed_means(diffs) for diffs, _ in matched])
    out = []
    for (_, placement, reference), (diffs, seeds), t in zip(groups, matched, tested, strict=True):
        d = t.diff
        power_sd = d.std if math.isfinite(d.std) and d.std > 0 else fallback_sd
        outcome = classify(d, margin)
        # A decided comparison needs no more seeds: none are quoted for it.
        pairs_needed, seeds_needed = (
            sample_size(power_sd, margin, len(groups), cells) if outcome == "cannot tell" else (None, None)
        )
        out.append(
            Comparison(
                placement=placement,
                reference=reference,
                diff=d,
                n_seeds=seeds,
                family=t.family,
                p_value=t.p_value,
                p_adjusted=t.p_adjusted,
                effect_size=d.mean / d.std if d.n >= 2 and d.std > 0 else math.nan,
                margin=margin,
                outcome=outcome,
                power_sd=power_sd,
                pairs_needed=pairs_needed,
                seeds_needed=seeds_needed,
                pairs=len(diffs),
                intra_seed_correlation=intra_seed_correlation(diffs),
            )
        )
    return tuple(out)


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


def sample_size(sd: float, margin: float, family: int, cells: int) -> tuple[int | None, int | None]:
    """Seeds for 80% power against a `margin`-sized difference, and the pairs they give at `cells`
    pairs a seed; `sd` is the SD of a seed's mean difference.

    The one-sample t-test's power (statsmodels TTestPower) on the per-seed means at the family's
    Bonferroni level.
    """
    if not math.isfinite(sd) or sd <= 0:
        return None, None
    seeds = pairs_for_power(margin / sd, ALPHA_OVERALL / max(1, family))
    if seeds is None:
        return None, None
    seeds = max(MIN_SEEDS, seeds)
    return seeds * max(1, cells), seeds


def pairs_for_power(effect_size: float, alpha: float, most: int = 10_000_000) -> int | None:
    """The fewest units (seeds) whose one-sample t-test reaches POWER, or None beyond `most`.

    Doubling, then bisection over TTestPower.power, which grows with n: its solve_power fails to
    converge for some effect sizes (statsmodels 0.15).
    """

    def enough(n: int) -> bool:
        power = TTestPower().power(effect_size=effect_size, nobs=n, alpha=alpha, alternative="two-sided")
        # scipy's noncentral t gives NaN far in its tail, where the power is 1 to many digits
        return bool(math.isnan(power) or power >= POWER)

    high = 2
    while not enough(high):
        if high > most:
            return None
        high *= 2
    low = high // 2
    if low < 2:
        return high
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high
