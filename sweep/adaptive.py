"""Adaptive seeds: add seeds only where a placement comparison is still undecided.

A sweep with `search.seeds: {min: 3, max: 20}` runs every configuration with `min` seeds, then
looks at its paired comparisons (each placement against the declared reference, on the same
block and seed). Like the report, a look judges the verdict's accuracy (test accuracy when the
spec has a test split, else validation; never `strategy.metric`), averages each seed's paired
differences (the seed is the unit, sweep/analysis/comparisons.py) and reads the outcome off the
interval with the report's own `classify`: no call from fewer than 3 seeds or from no spread.
Only the placements of undecided comparisons get `step` more seeds, until every comparison is
decided or `max` seeds are reached. The calls are recorded on the parent run as JSON
(`Call.to_json`, read back by sweep.analysis.sequential).

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

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from sweep.analysis.comparisons import Outcome, classify, comparison_pairs
from sweep.analysis.estimate import Estimate
from sweep.space import blocks
from sweep.spec import SweepSpec
from sweep.trial import RAN, RATE_KEY, SEED_KEY, RunStatus, TrialKey, config_key, with_rates


@dataclass(frozen=True)
class Call:
    """One comparison's state after a look: `placement` minus `reference`, in accuracy points."""

    placement: str
    reference: str
    outcome: Outcome
    look: int
    seeds: int  # seeds per configuration at this look
    pairs: int
    difference: float  # mean of the per-seed mean differences
    low: float  # the look's interval; NaN with fewer than 3 seeds of pairs
    high: float
    level: float = math.nan  # the interval's level: 1 - the look's share of alpha / comparisons
    seeds_with_pairs: int = 0  # the units the call rests on

    @property
    def decided(self) -> bool:
        return self.outcome != "cannot tell"

    def describe(self) -> str:
        """The call in words, for people (the data is `to_json`)."""
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return (
                f"{self.placement} vs {self.reference}: {self.outcome} at look {self.look} "
                f"({self.seeds_with_pairs} seed(s) with pairs, {self.pairs} pairs): no interval"
            )
        return (
            f"{self.placement} vs {self.reference}: {self.outcome} at look {self.look} "
            f"({self.seeds_with_pairs} seeds, {self.pairs} pairs): {self.difference:+.2f} points, "
            f"interval {self.low:+.2f} to {self.high:+.2f}"
        )

    def to_json(self) -> str:
        """The call as the parent run records it: JSON, NaN as null."""
        data = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()
        }
        return json.dumps(data, allow_nan=False)


def call_tags(calls: Iterable[Call]) -> dict[str, str]:
    """The parent run's tags of a look: `adaptive.<placement>.vs.<reference>` -> the call's JSON."""
    return {f"adaptive.{c.placement}.vs.{c.reference}": c.to_json() for c in calls}


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


def verdict_metric(spec: SweepSpec) -> str:
    """The accuracy the report's verdict is on: test when the spec holds a test split out."""
    return "final_test_accuracy" if spec.dataset.test_split > 0 else "final_val_accuracy"


def judge(seed_means: np.ndarray, level: float, margin: float) -> tuple[Outcome, float, float, float]:
    """Outcome, mean and two-sided (1 - level) t-interval of per-seed mean differences (points),
    the outcome read by the report's `classify`."""
    est = Estimate.of(seed_means, 1 - level)
    return classify(est, margin), est.mean, est.ci_low, est.ci_high


def per_seed(seeds: np.ndarray, diffs: np.ndarray) -> np.ndarray:
    """Each seed's mean difference, the seeds in ascending order."""
    if not len(diffs):
        return np.empty(0)
    found, codes = np.unique(seeds, return_inverse=True)
    return np.bincount(codes, weights=diffs, minlength=len(found)) / np.bincount(codes, minlength=len(found))


def paired_differences(trials: pd.DataFrame, a: str, b: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(seeds, accuracy points of `a` minus `b`) on the same (dropout, optimizer, learning rate, seed)."""
    ok = trials[trials["status"] == RunStatus.FINISHED].dropna(subset=[metric])
    keys = ["dropout", "optimizer", "seed"] + (["learning_rate"] if "learning_rate" in ok.columns else [])
    left = ok[ok["placement"] == a].groupby(keys)[metric].mean()
    right = ok[ok["placement"] == b].groupby(keys)[metric].mean()
    both = left.index.intersection(right.index)
    seeds = both.get_level_values("seed").to_numpy(dtype=int)
    return seeds, ((left.loc[both] - right.loc[both]) * 100).to_numpy(dtype=float)


def ran_keys(trials: pd.DataFrame) -> set[TrialKey]:
    """The keys of the trials that ran (`sweep.trial.RAN`): FINISHED or FAILED."""
    ran = trials[trials["status"].isin(RAN)]
    rates = ran["learning_rate"] if "learning_rate" in ran.columns else [None] * len(ran)
    return {
        config_key({"placement": p, "dropout": d, "optimizer": o, SEED_KEY: int(s), RATE_KEY: r})
        for p, d, o, s, r in zip(
            ran["placement"], ran["dropout"], ran["optimizer"], ran["seed"], rates, strict=True
        )
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
    metric = verdict_metric(spec)
    trials = with_rates(trials, spec)
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

    At look k (`looks[k]` seeds) every undecided comparison is judged on the per-seed means of
    its pairs with seed below that count, at the look's share of alpha over the number of
    comparisons. `missing`
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
            seen = pair_seeds < seeds
            means = per_seed(pair_seeds[seen], pair_diffs[seen])
            share = level / len(pairs)
            outcome, mean, low, high = judge(means, share, margin)
            calls[(a, b)] = Call(
                a, b, outcome, k, seeds, int(seen.sum()), mean, low, high, 1 - share, len(means)
            )
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
