"""`analyse`: the trial table in, everything the report says out."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sweep.analysis.comparisons import (
    ALPHA_CELLS,
    ALPHA_OVERALL,
    DEFAULT_MARGIN,
    Comparison,
    compare,
    comparison_pairs,
    fallback_sd,
)
from sweep.analysis.convergence import (
    DEFAULT_TARGET_SHARE,
    TimeDifference,
    bn_vs_none,
    first_epochs,
)
from sweep.analysis.equal_length import EqualLength, at_equal_length, truncate
from sweep.analysis.expectations import (
    Expectation,
    expect_after_dropout,
    expect_before_vs_after,
    expect_faster_with_bn,
    expect_less_dropout_with_bn,
)
from sweep.analysis.factors import BestDropout, CellMeans, best_dropout, cell_means
from sweep.analysis.formatting import metric_label
from sweep.analysis.interactions import Interaction, interactions
from sweep.analysis.placements import PlacementSummary, summarise
from sweep.analysis.rates import BestRate, best_rates
from sweep.analysis.recalibration import Recalibration, all_finite, recalibration
from sweep.analysis.recalibration import describe as describe_recalibration
from sweep.analysis.sequential import AdaptiveSeeds
from sweep.analysis.serialisation import estimate_metrics, plain
from sweep.analysis.trials import PAIR_KEYS, clean_curves, clean_trials, placement_order, usable_mask
from sweep.analysis.tuning import SEED_ONLY, OwnSettings, confirmations, is_per_placement, own_settings
from sweep.analysis.variance_shift import VarianceShift, variance_shifts
from sweep.analysis.verdict import verdict_sentences


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything the report says about one sweep."""

    metric: str
    target_accuracy: float  # NaN when no trial gives a basis for it
    target_is_default: bool
    n_trials: int
    n_seeds: int
    reference: str  # the placement the others are compared with, or "all" (every pair)
    equivalence_margin: float  # points
    best_placement: str | None  # the highest mean: a description, never the reference
    equal_length: EqualLength | None  # set when trials of unequal length were compared at one epoch
    placements: tuple[PlacementSummary, ...]
    variance_shift: tuple[VarianceShift, ...]
    comparisons: tuple[Comparison, ...]
    time_difference: TimeDifference | None  # BN placements minus none, epochs to target
    interactions: tuple[Interaction, ...]  # does each comparison's effect depend on the cell?
    cell_means: tuple[CellMeans, ...]  # descriptive: mean metric by placement and factor
    best_dropout: tuple[BestDropout, ...]
    own_settings: OwnSettings | None  # per-placement tuning: the blocks the re-runs compared
    adaptive: AdaptiveSeeds | None  # adaptive seeds: the sequential calls the sweep made
    recalibration: Recalibration | None  # after_dropout with BN statistics re-estimated without dropout
    verdict: tuple[str, ...]
    expectations: tuple[Expectation, ...]
    # Pooled over the comparisons (mean of each one's estimate): why the seed is the unit; NaN if none.
    intra_seed_correlation: float = math.nan
    seeds_needed: int | None = None  # the most any undecided comparison needs; None when none says
    families: tuple[str, ...] = ()  # which claims share the verdict's one error rate, and their share
    split_per_seed: bool | None = None  # whether each seed drew its own evaluation rows; None: unknown
    evaluation_rows: int | None = None  # the fixed evaluation rows' count, when known
    best_rates: tuple[BestRate, ...] = ()  # learning rates drawn from a range: each placement's best

    def placement(self, name: str) -> PlacementSummary:
        """The summary of placement `name`."""
        for summary in self.placements:
            if summary.placement == name:
                return summary
        have = ", ".join(s.placement for s in self.placements)
        raise KeyError(f"placement: no trials for {name!r} (have {have})")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data; NaN and infinities become None."""
        data: dict[str, Any] = plain(self)
        data["metric_label"] = metric_label(self.metric)
        return data

    def summary_metrics(self) -> dict[str, float]:
        """Flat finite numbers for a tracking server, keyed like `placement.none.failed_share`."""
        out: dict[str, float] = {"target_accuracy": self.target_accuracy}
        for s in self.placements:
            pre = f"placement.{s.placement}."
            for name, est in (
                ("val_accuracy", s.final_val_accuracy),
                ("best_val_accuracy", s.best_val_accuracy),
                ("val_loss", s.final_val_loss),
            ):
                out |= estimate_metrics(pre + name, est)
            t = s.time_to_target
            out[pre + "epochs_to_target_median"] = t.median
            out[pre + "epochs_to_target_restricted_mean"] = t.restricted_mean
            out[pre + "reached_share"] = t.reached_share
            out[pre + "bn_variance_shift_geomean"] = s.bn_variance_shift.mean
            out[pre + "failed_share"] = s.failed_share
        for c in self.comparisons:
            pre = f"comparison.{c.placement}_vs_{c.reference}."
            out[pre + "diff_points"] = c.diff.mean
            out[pre + "diff_ci_low"] = c.diff.ci_low
            out[pre + "diff_ci_high"] = c.diff.ci_high
            out[pre + "p_adjusted"] = c.p_adjusted
            out[pre + "n_pairs"] = float(c.n_pairs)
            out[pre + "n_seeds"] = float(c.n_seeds)
            out[pre + "intra_seed_correlation"] = c.intra_seed_correlation
        for i in self.interactions:
            pre = f"interaction.{i.placement}_vs_{i.reference}."
            out[pre + "f_value"] = i.f_value
            out[pre + "p_adjusted"] = i.p_adjusted
        return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(v)}


def analyse(
    trials: pd.DataFrame,
    curves: pd.DataFrame | None = None,
    target_accuracy: float | None = None,
    metric: str | None = None,
    *,
    reference: str | None = None,
    equivalence_margin: float = DEFAULT_MARGIN,
    adaptive: AdaptiveSeeds | None = None,
    split_per_seed: bool | None = None,
    evaluation_rows: int | None = None,
) -> Analysis:
    """Summarise, compare and judge the placements of one sweep.

    `target_accuracy` (a fraction) defaults to 95% of the best placement's mean final
    validation accuracy, rounded down to a whole percent, so that most trials can reach it.
    `reference` is a placement, "all" (every pair), or None: `none` when it has usable trials,
    else all. `equivalence_margin` is in accuracy points. A table with a `phase` column of a
    per-placement sweep is judged on its re-runs only (tuning.py); `adaptive` holds the sequential
    calls an adaptive sweep recorded on its parent run (sequential.py). `split_per_seed` (the
    spec's dataset.split_per_seed; None when not known) and `evaluation_rows` say for which rows
    the intervals speak (verdict.scope_sentence).

    `metric` None: final test accuracy when every usable trial has one and all trained equally
    long (the held-out split decides the comparisons), else final validation accuracy. Best
    settings of per-placement tuning and the default target are read on validation either way.
    """
    if target_accuracy is not None and not 0 < target_accuracy <= 1:
        raise ValueError(f"target_accuracy: must be a fraction > 0 and <= 1 (got {target_accuracy})")
    if not 0 < equivalence_margin <= 100:
        raise ValueError(f"equivalence_margin: must be > 0 and <= 100 points (got {equivalence_margin})")
    table = _ready_table(trials, curves, metric, reference)
    target_is_default = target_accuracy is None
    target = _default_target(table.compared) if target_accuracy is None else target_accuracy
    found = _findings(table, target, equivalence_margin)
    return _judged(
        table,
        found,
        _Question(target, target_is_default, equivalence_margin, adaptive, split_per_seed, evaluation_rows),
    )


@dataclass(frozen=True)
class _Table:
    """The trial table made ready to judge: cleaned, its metric and reference chosen, at one length."""

    trials: pd.DataFrame  # a per-placement sweep's re-runs only
    curves: pd.DataFrame
    order: list[str]  # the placements, in the report's order
    own: OwnSettings | None
    keys: tuple[str, ...]  # what pairs two trials across placements
    metric: str
    usable: pd.DataFrame
    compared: pd.DataFrame  # the usable trials, at equal length when they trained unequally
    equal: EqualLength | None
    reference: str


def _ready_table(
    trials: pd.DataFrame, curves: pd.DataFrame | None, metric: str | None, reference: str | None
) -> _Table:
    validation = "final_val_accuracy"
    trials = clean_trials(trials, metric or validation)
    clean = clean_curves(curves)
    order = placement_order(trials["placement"].unique())
    own: OwnSettings | None = None
    keys: tuple[str, ...] = PAIR_KEYS
    if is_per_placement(trials):
        own, keys = own_settings(trials, metric or validation, order), SEED_ONLY
        trials = confirmations(trials)
    metric = metric or _verdict_accuracy(trials)
    usable = trials[usable_mask(trials, metric)]
    compared, equal = at_equal_length(usable, clean, metric)
    reference = _resolve_reference(reference, order, set(compared["placement"]))
    return _Table(trials, clean, order, own, keys, metric, usable, compared, equal, reference)


def _default_target(compared: pd.DataFrame) -> float:
    """95% of the best placement's mean final validation accuracy, down to a whole percent."""
    means = compared.groupby("placement")["final_val_accuracy"].mean()
    best_mean = float(means.max()) if len(means) else math.nan
    return math.floor(DEFAULT_TARGET_SHARE * best_mean * 100) / 100 if math.isfinite(best_mean) else math.nan


@dataclass(frozen=True)
class _Findings:
    """The numbers the verdict is drawn from."""

    finished: pd.DataFrame
    times: pd.DataFrame  # epochs to target, per run
    horizon: float  # the last epoch any followed curve reached
    summaries: tuple[PlacementSummary, ...]
    best: str | None
    cells: int
    comparisons: tuple[Comparison, ...]
    shifts: tuple[VarianceShift, ...]
    tested: tuple[Interaction, ...]
    by_factor: tuple[CellMeans, ...]
    best_dropouts: tuple[BestDropout, ...]
    speed: TimeDifference | None
    recal: Recalibration | None
    n_seeds: int


def _findings(table: _Table, target: float, margin: float) -> _Findings:
    trials, compared, metric, order, own = table.trials, table.compared, table.metric, table.order, table.own
    finished = trials[trials["status"] == "FINISHED"]
    followed = truncate(table.curves, table.equal)
    times = first_epochs(followed, finished["run_id"], target)
    seen = followed.loc[followed["run_id"].isin(set(times.index)), "epoch"]
    horizon = float(seen.max()) if len(seen) else math.nan

    n_usable = table.usable["placement"].value_counts()
    summaries = tuple(
        summarise(trials, int(n_usable.get(p, 0)), compared, times, horizon, p, metric) for p in order
    )
    usable_means = {s.placement: s.metric.mean for s in summaries if s.metric.n}
    best = max(usable_means, key=lambda p: usable_means[p]) if usable_means else None
    blocks = trials[[k for k in PAIR_KEYS if k != "seed"]].drop_duplicates()
    cells = 1 if own is not None else max(1, len(blocks))
    pairs = comparison_pairs([p for p in order if p in usable_means], table.reference)
    groups = [(compared, p, ref) for p, ref in pairs]
    comparisons = compare(groups, metric, margin, cells, fallback_sd(compared, metric), keys=table.keys)
    # With each placement at its own block there are no shared cells to break the effect down by.
    factors = () if own is not None else ("dropout", "optimizer")
    return _Findings(
        finished=finished,
        times=times,
        horizon=horizon,
        summaries=summaries,
        best=best,
        cells=cells,
        comparisons=comparisons,
        shifts=variance_shifts(compared, order),
        tested=() if own is not None else interactions(groups, metric, margin),
        by_factor=tuple(m for f in factors if (m := cell_means(compared, f, metric, order))),
        best_dropouts=() if own is not None else best_dropout(compared, metric),
        speed=bn_vs_none(finished, times, horizon, table.keys),
        recal=None if own is not None or table.equal is not None else recalibration(compared, margin),
        n_seeds=int(trials["seed"].nunique()),
    )


@dataclass(frozen=True)
class _Question:
    """What the caller asked beside the table: the target, the margin, what the sweep recorded."""

    target: float
    target_is_default: bool
    margin: float
    adaptive: AdaptiveSeeds | None
    split_per_seed: bool | None
    evaluation_rows: int | None


def _judged(table: _Table, found: _Findings, asked: _Question) -> Analysis:
    """The expectations and the verdict drawn from the findings, and the Analysis that holds all."""
    own, margin, metric = table.own, asked.margin, table.metric
    expectations = _expectations(table, found, asked)
    verdict = verdict_sentences(
        trials=table.trials,
        summaries=found.summaries,
        comparisons=found.comparisons,
        reference=table.reference,
        margin=margin,
        equal_length=table.equal,
        speed=found.speed,
        shifts=found.shifts,
        interactions=found.tested,
        own=own,
        adaptive=asked.adaptive,
        metric=metric,
        best=found.best,
        target=asked.target,
        target_is_default=asked.target_is_default,
        cells=found.cells,
        n_seeds=found.n_seeds,
        split_per_seed=asked.split_per_seed,
        evaluation_rows=asked.evaluation_rows,
    )
    if found.recal is not None:
        verdict.append(describe_recalibration(found.recal))
    comparisons = found.comparisons
    return Analysis(
        metric=metric,
        target_accuracy=float(asked.target),
        target_is_default=asked.target_is_default,
        n_trials=len(table.trials),
        n_seeds=found.n_seeds,
        reference=table.reference,
        equivalence_margin=margin,
        best_placement=found.best,
        equal_length=table.equal,
        placements=found.summaries,
        variance_shift=found.shifts,
        comparisons=comparisons,
        time_difference=found.speed,
        interactions=found.tested,
        cell_means=found.by_factor,
        best_dropout=found.best_dropouts,
        own_settings=own,
        adaptive=asked.adaptive,
        recalibration=found.recal,
        verdict=tuple(verdict),
        expectations=expectations,
        intra_seed_correlation=_pooled_correlation(comparisons),
        seeds_needed=max(
            (c.seeds_needed for c in comparisons if c.outcome == "cannot tell" and c.seeds_needed),
            default=None,
        ),
        families=_families(comparisons, found.tested),
        split_per_seed=asked.split_per_seed,
        evaluation_rows=asked.evaluation_rows,
        best_rates=() if own is not None else best_rates(table.compared, metric, table.order),
    )


def _expectations(table: _Table, found: _Findings, asked: _Question) -> tuple[Expectation, ...]:
    own, margin, metric = table.own is not None, asked.margin, table.metric
    return (
        expect_before_vs_after(table.compared, metric, margin, found.comparisons, table.keys),
        expect_after_dropout(table.compared, metric, margin, found.shifts, own),
        expect_less_dropout_with_bn(table.compared, metric, found.best_dropouts, own),
        expect_faster_with_bn(found.speed, found.times, asked.target),
    )


def _pooled_correlation(comparisons: tuple[Comparison, ...]) -> float:
    found = [c.intra_seed_correlation for c in comparisons if math.isfinite(c.intra_seed_correlation)]
    return sum(found) / len(found) if found else math.nan


def _families(comparisons: tuple[Comparison, ...], tested: tuple[Interaction, ...]) -> tuple[str, ...]:
    """The claims that share the verdict's error rate, each family with its share of ALPHA."""
    out = []
    if comparisons:
        named = ", ".join(f"{c.placement} vs {c.reference}" for c in comparisons)
        out.append(f"overall comparisons ({named}): alpha {ALPHA_OVERALL:g}, Bonferroni")
    if tested:
        cells = sum(len(i.cells) for i in tested if math.isfinite(i.p_value))
        out.append(
            f"interaction tests ({len(tested)}) and the per-cell claims they gate ({cells} cells): "
            f"alpha {ALPHA_CELLS:g}, Bonferroni within each"
        )
    return tuple(out)


def _resolve_reference(reference: str | None, placements: list[str], with_data: set[str]) -> str:
    """The declared reference; by default `none` where it has usable trials, else every pair."""
    if reference is None:
        return "none" if "none" in with_data else "all"
    if reference != "all" and reference not in placements:
        raise ValueError(
            f"reference: must be one of the sweep's placements ({', '.join(placements)}) or all "
            f"(got {reference!r})"
        )
    return reference


def _verdict_accuracy(trials: pd.DataFrame) -> str:
    """Test accuracy when every usable trial has one and all trained equally long, else validation.

    A stopped trial's test accuracy is from its last epoch, not from the rung all trials reached,
    so sweeps of unequal length stay on validation (read off the curves at that rung).
    """
    usable = trials[usable_mask(trials, "final_val_accuracy")]
    if "final_test_accuracy" not in usable.columns or not all_finite(usable["final_test_accuracy"]):
        return "final_val_accuracy"
    if "epochs_completed" in usable.columns:
        lengths = pd.to_numeric(usable["epochs_completed"], errors="coerce").dropna()
        if lengths.nunique() > 1:
            return "final_val_accuracy"
    return "final_test_accuracy"
