"""Adaptive seeds: add seeds only where a placement comparison is still undecided.

A sweep with `search.seeds: {min: 3, max: 20}` runs every configuration with `min` seeds, then
looks at its paired comparisons (each placement against the declared reference, on the same
block and seed). A comparison is decided once its interval excludes zero (better or worse) or
lies inside the equivalence margin (equivalent); only the placements of undecided comparisons
get `step` more seeds, until every comparison is decided or `max` seeds are reached.

Repeated looks at growing data inflate errors unless each look spends only part of the error
rate. Each look k tests at its increment of Lan-DeMets' Pocock-type spending function,
alpha(t) = alpha * ln(1 + (e - 1) t) with t = seeds / max, divided by the number of comparisons
(Bonferroni). By the union bound every interval at every look covers its true difference with
probability at least 1 - alpha together, so a "worse" (or "equivalent") call is wrong with
probability at most alpha over the whole sequential procedure (tests/unit/test_adaptive.py
checks it on 2000 simulated null sweeps).

Pure logic on a trial table (sweep.results.trial_table); the runner decides what to run.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from sweep.analysis.comparisons import comparison_pairs
from sweep.space import blocks
from sweep.spec import SweepSpec
from sweep.trial import RAN, SEED_KEY, RunStatus, TrialKey, config_key


@dataclass(frozen=True)
class Call:
    """One comparison's state after a look: `placement` minus `reference`, in accuracy points."""

    placement: str
    reference: str
    outcome: str  # better | worse | equivalent | cannot tell
    look: int
    seeds: int
    pairs: int
    difference: float
    low: float
    high: float

    @property
    def decided(self) -> bool:
        return self.outcome != "cannot tell"

    def describe(self) -> str:
        if self.pairs < 2:
            return f"{self.placement} vs {self.reference}: too few pairs ({self.pairs}) at {self.seeds} seeds"
        return (
            f"{self.placement} vs {self.reference}: {self.outcome} at look {self.look} "
            f"({self.seeds} seeds, {self.pairs} pairs): {self.difference:+.2f} points, "
            f"interval {self.low:+.2f} to {self.high:+.2f}"
        )


@dataclass(frozen=True)
class Round:
    """What to run next: these placements with these seeds, every block."""

    placements: tuple[str, ...]
    seeds: range


@dataclass(frozen=True)
class Progress:
    """The sequential procedure replayed on the data so far."""

    calls: tuple[Call, ...]
    next_round: Round | None  # None: every comparison decided, or max seeds reached

    @property
    def decided(self) -> bool:
        return self.next_round is None


def schedule(first: int, last: int, step: int) -> list[int]:
    """Seeds per configuration at each look: first, first + step, ..., last."""
    return sorted({*range(first, last, step), last})


def spent(fraction: float, alpha: float) -> float:
    """Lan-DeMets Pocock-type alpha spending: what looks up to `fraction` of the seeds may use."""
    return alpha * math.log(1 + (math.e - 1) * min(max(fraction, 0.0), 1.0))


def look_levels(looks: list[int], alpha: float) -> list[float]:
    """Each look's own error rate (the increments of the spending function; they sum to alpha)."""
    total = looks[-1]
    cumulative = [spent(n / total, alpha) for n in looks]
    return [b - a for a, b in zip([0.0, *cumulative], cumulative, strict=False)]


def comparisons(spec: SweepSpec) -> list[tuple[str, str]]:
    """(placement, reference) pairs, the reference declared in the spec (as the report's)."""
    placements = list(spec.search.placement)
    reference = spec.analysis.reference
    if reference is None:
        reference = "none" if "none" in placements else "all"
    return comparison_pairs(placements, reference)


@functools.lru_cache(maxsize=4096)
def _t_quantile(q: float, dof: int) -> float:
    return float(stats.t.ppf(q, dof))


def judge(differences: np.ndarray, level: float, margin: float) -> tuple[str, float, float, float]:
    """Outcome, mean and two-sided (1 - level) t-interval of paired differences (points)."""
    n = len(differences)
    if n < 2:
        return "cannot tell", float(np.mean(differences)) if n else math.nan, -math.inf, math.inf
    mean = float(np.mean(differences))
    sd = float(np.std(differences, ddof=1))
    half = _t_quantile(1 - level / 2, n - 1) * sd / math.sqrt(n) if sd > 0 else 0.0
    low, high = mean - half, mean + half
    if low > 0:
        outcome = "better"
    elif high < 0:
        outcome = "worse"
    elif -margin < low and high < margin:
        outcome = "equivalent"
    else:
        outcome = "cannot tell"
    return outcome, mean, low, high


def paired_differences(trials: pd.DataFrame, a: str, b: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(seeds, accuracy points of `a` minus `b`) on the same (dropout, optimizer, seed)."""
    ok = trials[trials["status"] == RunStatus.FINISHED].dropna(subset=[metric])
    keys = ["dropout", "optimizer", "seed"]
    left = ok[ok["placement"] == a].groupby(keys)[metric].mean()
    right = ok[ok["placement"] == b].groupby(keys)[metric].mean()
    both = left.index.intersection(right.index)
    seeds = both.get_level_values("seed").to_numpy(dtype=int)
    return seeds, ((left.loc[both] - right.loc[both]) * 100).to_numpy(dtype=float)


def ran_keys(trials: pd.DataFrame) -> set[TrialKey]:
    """The keys of the trials that ran (`sweep.trial.RAN`): FINISHED or FAILED."""
    ran = trials[trials["status"].isin(RAN)]
    return {
        config_key({"placement": p, "dropout": d, "optimizer": o, SEED_KEY: int(s)})
        for p, d, o, s in zip(ran["placement"], ran["dropout"], ran["optimizer"], ran["seed"], strict=True)
    }


def _missing(trials: pd.DataFrame, spec: SweepSpec, placements: Iterable[str], seeds: range) -> bool:
    """Whether a trial of these placements and seeds, on any block, has not run yet."""
    have = ran_keys(trials)
    return any(
        config_key({"placement": p, **block, SEED_KEY: s}) not in have
        for p in placements
        for block in blocks(spec)
        for s in seeds
    )


Differences = dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]  # pair -> (seeds, points)


def replay(trials: pd.DataFrame, spec: SweepSpec) -> Progress:
    """Replay the looks on the trials so far: the calls made and the round to run next.

    Deterministic in the data, so a resumed sweep takes the same decisions and goes on where
    the interrupted one stopped (a look whose seeds are not all in is the round to run).
    """
    adaptive = spec.search.adaptive
    assert adaptive is not None
    metric = f"final_{spec.strategy.metric}"
    differences = {pair: paired_differences(trials, *pair, metric) for pair in comparisons(spec)}
    return sequential(
        differences,
        schedule(spec.search.seeds, adaptive.max, adaptive.step),
        adaptive.alpha,
        spec.analysis.equivalence_margin,
        lambda placements, seeds: _missing(trials, spec, placements, seeds),
    )


def sequential(
    differences: Differences,
    looks: list[int],
    alpha: float,
    margin: float,
    missing: Callable[[set[str], range], bool] = lambda placements, seeds: False,
) -> Progress:
    """The procedure itself, on each comparison's paired differences by seed.

    At look k (`looks[k]` seeds) every undecided comparison is judged on its pairs with seed
    below that count, at the look's share of alpha over the number of comparisons. `missing`
    says whether trials of the placements still needed are not in yet for the look's new seeds:
    then that is the round to run.
    """
    levels = look_levels(looks, alpha)
    pairs = list(differences)
    calls: dict[tuple[str, str], Call] = {}
    needed = {p for pair in pairs for p in pair}
    previous = 0
    for k, (seeds, level) in enumerate(zip(looks, levels, strict=True), start=1):
        if missing(needed, range(previous, seeds)):
            return Progress(tuple(calls.values()), Round(tuple(sorted(needed)), range(previous, seeds)))
        for a, b in pairs:
            if (a, b) in calls and calls[(a, b)].decided:
                continue  # a decision stands: later data never reopens it
            pair_seeds, pair_diffs = differences[(a, b)]
            diffs = pair_diffs[pair_seeds < seeds]
            outcome, mean, low, high = judge(diffs, level / len(pairs), margin)
            calls[(a, b)] = Call(a, b, outcome, k, seeds, len(diffs), mean, low, high)
        open_pairs = [pair for pair, call in calls.items() if not call.decided]
        needed = {p for pair in open_pairs for p in pair}
        previous = seeds
        if not open_pairs:
            break
    return Progress(tuple(calls.values()), None)


def trials_saved(spec: SweepSpec, ran: int) -> int:
    """Trials an adaptive sweep did not run, against `max` seeds for every configuration."""
    adaptive = spec.search.adaptive
    assert adaptive is not None
    return spec.configuration_count * adaptive.max - ran
