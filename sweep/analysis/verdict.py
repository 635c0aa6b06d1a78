"""The verdict: the report's answer in sentences, each read off the numbers it quotes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from sweep.analysis.comparisons import ALPHA, ALPHA_CELLS, ALPHA_OVERALL, MIN_SEEDS, Comparison
from sweep.analysis.convergence import DEFAULT_TARGET_SHARE, TimeDifference, describe_difference
from sweep.analysis.equal_length import EqualLength, describe
from sweep.analysis.formatting import (
    TOO_FEW,
    difference_text,
    format_interval,
    format_number,
    format_p,
    metric_label,
)
from sweep.analysis.interactions import Interaction
from sweep.analysis.placements import PlacementSummary
from sweep.analysis.rates import drawn_rates, matched_on
from sweep.analysis.sequential import AdaptiveSeeds
from sweep.analysis.tuning import OwnSettings
from sweep.analysis.tuning import describe as describe_own
from sweep.analysis.variance_shift import VarianceShift


def verdict_sentences(
    *,
    trials: pd.DataFrame,
    summaries: Sequence[PlacementSummary],
    comparisons: Sequence[Comparison],
    reference: str,
    margin: float,
    equal_length: EqualLength | None,
    speed: TimeDifference | None,
    shifts: Sequence[VarianceShift],
    interactions: Sequence[Interaction],
    own: OwnSettings | None,
    adaptive: AdaptiveSeeds | None,
    metric: str,
    best: str | None,
    target: float,
    target_is_default: bool,
    cells: int,
    n_seeds: int,
    split_per_seed: bool | None = None,
    evaluation_rows: int | None = None,
) -> list[str]:
    """The verdict, most important first.

    Only what a test or an interval carries: the cell-mean tables' notes stay with their tables.
    """
    label = metric_label(metric)
    out = [describe_own(own) + " " + rescored(metric, split_per_seed)] if own else []
    if best is None:
        which = "re-run" if own else "trial"
        return [*out, f"No {which} finished with a finite {label}; there is nothing to compare."]
    out += [describe(equal_length)] if equal_length else []
    out.append(_accuracy_sentence(metric))
    out.append(_best_sentence(summaries, best, label))
    if adaptive is not None:
        out.append(
            "Seeds were added adaptively while comparisons were undecided: the sequential calls "
            "(section Adaptive seeds) are the ones that keep the error rate over the repeated "
            "looks; the fixed-sample intervals below, computed once on the final data, are "
            "descriptive."
        )
    out += _comparison_sentences(
        comparisons, interactions, reference, margin, label, cells, n_seeds, own is not None, trials
    )
    out += _interaction_summary(interactions)
    out += _seed_sentences(comparisons)
    out.append(scope_sentence(metric, split_per_seed, evaluation_rows))
    out += _failure_sentences(trials, summaries)
    out += _time_sentences(summaries, speed, target, target_is_default)
    out += _variance_shift_sentences(shifts)
    return out


def _best_sentence(summaries: Sequence[PlacementSummary], best: str, label: str) -> str:
    """The placement with the highest mean, with its interval (a description, not a test)."""
    est = next(s for s in summaries if s.placement == best).metric
    ci = f"95% CI {format_interval(est, 100)}%, n = {est.n} seeds" if est.has_interval else ""
    ci = ci or f"n = {est.n} seed(s), {TOO_FEW}"
    return (
        f"Highest mean {label}: {best} ({format_number(est.mean * 100)}%, the mean of its seeds' "
        f"means, {ci})."
    )


def _failure_sentences(trials: pd.DataFrame, summaries: Sequence[PlacementSummary]) -> list[str]:
    """The trials left out of the statistics, and the placements left with none."""
    out = []
    failed = [s for s in summaries if s.failed_share > 0]
    if failed:
        n_bad = sum(round(s.failed_share * s.n_trials) for s in failed)
        shares = ", ".join(f"{s.placement} {format_number(s.failed_share * 100, 0)}%" for s in failed)
        out.append(
            f"{n_bad} of {len(trials)} trials failed or diverged and are left out of the "
            f"statistics ({shares} of their placement's trials)."
        )
    out.extend(
        f"{s.placement} has no usable trial, so it is not compared." for s in summaries if s.metric.n == 0
    )
    return out


def _variance_shift_sentences(shifts: Sequence[VarianceShift]) -> list[str]:
    """BN's variance shift where dropout feeds it, beside what Li et al. 2019 predict."""
    fed = [s for s in shifts if s.expected is not None and s.dropout > 0]
    if not fed:
        return []
    listed = ", ".join(
        f"{format_number(s.ratio.mean, 2)} at dropout {s.dropout:g} "
        f"({'at least ' if s.expected_is_lower_bound else ''}{format_number(s.expected, 2)} predicted)"
        for s in fed
    )
    names = sorted({s.placement for s in fed})
    return [
        f"In {', '.join(names)}, BN's moving variance divided by the variance it sees at test "
        f"time (geometric mean over seeds) is {listed}; Li et al. 2019 predict "
        f"1/p + (1/p \u2212 1)\u00b7c\u00b2/v for keep rate p and input mean c and variance v, "
        f"at least 1/(1\u2212rate)."
    ]


def _accuracy_sentence(metric: str) -> str:
    """Which accuracy the verdict is on, and what validation is still used for."""
    if metric == "final_test_accuracy":
        return (
            "The comparisons below are on final test accuracy, the held-out split "
            "(dataset.test_split) no trial trained or was selected on; best settings and the "
            "convergence target are read on validation."
        )
    why = (
        ""
        if metric != "final_val_accuracy"
        else " (not every usable trial has a test accuracy: no dataset.test_split, or trials of "
        "unequal length)"
    )
    return f"The comparisons below are on {metric_label(metric)}{why}."


def _comparison_sentences(
    comparisons: Sequence[Comparison],
    interactions: Sequence[Interaction],
    reference: str,
    margin: float,
    label: str,
    cells: int,
    n_seeds: int,
    own_settings: bool,
    trials: pd.DataFrame,
) -> list[str]:
    if not comparisons:
        if reference != "all":
            lacking = f"{reference} (the reference) or every other placement lacks usable trials"
            return [f"{lacking}, so nothing is compared."]
        return ["Only one placement has usable trials, so there is nothing to compare."]
    what = (
        "the later minus the earlier placement of every pair"
        if reference == "all"
        else f"each placement minus {reference}, the reference declared before the data"
    )
    family = max(c.family for c in comparisons)
    intervals = (
        f"The seed is the unit: each seed's paired differences are averaged and the intervals are "
        f"t-intervals over those per-seed means (seeds \u2212 1 degrees of freedom), "
        f"Bonferroni-simultaneous over the {family} testable comparison(s) at "
        f"{ALPHA_OVERALL * 100:g}% together, p-values adjusted to match"
        if family
        else f"No comparison has the {MIN_SEEDS} seeds with some spread that an interval needs"
    )
    matched = "seed (each placement at its own settings)" if own_settings else matched_on(drawn_rates(trials))
    out = [
        f"\u0394 below is {what}, in percentage points of {label}, matched on {matched}. "
        f"{intervals}. A comparison is equivalent when its whole interval lies inside "
        f"\u00b1{margin:g} point(s), better or worse when it lies wholly above or below 0, and "
        f"otherwise this sweep cannot tell. "
        f"{family_sentence(any(math.isfinite(i.p_value) for i in interactions))}"
    ]
    depends = {(i.placement, i.reference): i for i in interactions if i.depends}
    for c in comparisons:
        found = depends.get((c.placement, c.reference))
        out.append(interaction_sentence(found, c) if found else comparison_sentence(c, cells, n_seeds))
    directional = any(c.outcome in ("better", "worse") for c in comparisons) or any(
        cell.outcome in ("better", "worse") for i in depends.values() for cell in i.cells
    )
    if not directional:
        whom = "any other" if reference == "all" else reference
        out.append(f"No placement is shown to be better or worse than {whom}.")
    return out


def comparison_sentence(c: Comparison, cells: int, n_seeds: int) -> str:
    """One comparison's outcome with the numbers it rests on."""
    d = c.diff
    numbers = difference_text(d, pairs=c.n_pairs)
    if math.isfinite(c.p_adjusted):
        numbers += f", adjusted {format_p(c.p_adjusted, 'p')}, d_z = {format_number(c.effect_size, 2)}"
    m = f"\u00b1{c.margin:g}-point margin"
    if c.outcome == "equivalent":
        sentence = f"{c.placement} is equivalent to {c.reference} within the {m} ({numbers})"
        if c.excludes_zero:
            side = "better" if d.mean > 0 else "worse"
            sentence += f"; the interval excludes 0, so it is slightly {side}, by less than the margin"
        return sentence + "."
    if c.outcome in ("better", "worse"):
        size = (
            f"by more than the {m}"
            if c.beyond_margin
            else f"by {format_number(abs(d.mean))} points, perhaps less than the {m}"
        )
        return f"{c.placement} is {c.outcome} than {c.reference} {size} ({numbers})."
    sentence = f"This sweep cannot tell {c.placement} from {c.reference} ({numbers})"
    if c.pairs_needed is None or c.seeds_needed is None:
        return sentence + "; run at least 2 seeds to estimate how many would be needed."
    source = (
        "the observed SD of the per-seed mean differences"
        if d.n >= 2 and d.std > 0
        else "the SD of one pair across trials, as fewer than 2 seeds measure a seed mean's SD"
    )
    return (
        f"{sentence}; resolving a {c.margin:g}-point difference at 80% power and \u03b1 = "
        f"{ALPHA_OVERALL:g}/{max(1, c.family)} needs about {c.seeds_needed} seeds (this sweep has "
        f"{n_seeds}; SD {format_number(c.power_sd)} points from {source})."
    )


def _time_sentences(
    summaries: Sequence[PlacementSummary],
    speed: TimeDifference | None,
    target: float,
    target_is_default: bool,
) -> list[str]:
    timed = [s for s in summaries if s.time_to_target.n]
    if not timed or not math.isfinite(target):
        return []
    how = (
        f" (the default target: {DEFAULT_TARGET_SHARE:.0%} of the best mean final validation "
        f"accuracy, rounded down)"
        if target_is_default
        else ""
    )
    horizon = format_number(timed[0].time_to_target.horizon, 0)
    listed = ", ".join(
        f"{s.placement} median {_median(s.time_to_target.median)}, restricted mean "
        f"{format_number(s.time_to_target.restricted_mean)} ({s.time_to_target.n_reached}/"
        f"{s.time_to_target.n} reached it)"
        for s in timed
    )
    out = [
        f"Epochs to reach {format_number(target * 100, 0)}% validation accuracy{how}, by "
        f"Kaplan\u2013Meier with trials that never reached it censored at their last epoch, and "
        f"the restricted mean counting them as {horizon}: {listed}."
    ]
    if speed is not None:
        out.append(describe_difference(speed, target))
    return out


def _median(x: float) -> str:
    return format_number(x, 0) if math.isfinite(x) else "not reached"


def interaction_sentence(i: Interaction, c: Comparison) -> str:
    """A comparison whose effect depends on the cell: its outcome per cell instead of one Δ."""
    return (
        f"Against {c.reference}, {c.placement} is {i.how()}: its effect depends on the dropout "
        f"\u00d7 optimizer cell (Welch F({i.df_cells}, {format_number(i.df_resid)}) = "
        f"{format_number(i.f_value, 1)}, Bonferroni-adjusted {format_p(i.p_adjusted, 'p')} < "
        f"{i.alpha:g}), each cell read off its simultaneous interval from its own seeds by the rule "
        f"above; the overall \u0394 = {format_number(c.diff.mean, signed=True)} points averages over "
        f"the cells and is not the answer."
    )


def _interaction_summary(interactions: Sequence[Interaction]) -> list[str]:
    """One sentence on the interaction tests that found nothing."""
    quiet = [i for i in interactions if math.isfinite(i.p_adjusted) and not i.depends]
    if not quiet:
        return []
    smallest = min(i.p_adjusted for i in quiet)
    which = "No comparison's" if len(quiet) == len(interactions) else "No other comparison's"
    return [
        f"{which} effect is shown to depend on dropout or optimizer (Welch F-tests of the paired "
        f"differences across the {max(i.n_cells for i in quiet)} dropout \u00d7 optimizer cells, "
        f"Bonferroni over {quiet[0].family} comparison(s) at {quiet[0].alpha:g}: smallest adjusted "
        f"{format_p(smallest, 'p')}); the overall \u0394 stands, though a smaller dependence cannot "
        f"be ruled out."
    ]


def family_sentence(with_cells: bool) -> str:
    """Which claims share the verdict's one error rate."""
    if not with_cells:
        return (
            f"Every better, worse or equivalent claim here shares one {ALPHA * 100:g}% error rate "
            f"(the overall comparisons use {ALPHA_OVERALL * 100:g}% of it)."
        )
    return (
        f"Every better, worse or equivalent claim here, overall or per cell, shares one "
        f"{ALPHA * 100:g}% error rate: the overall comparisons use {ALPHA_OVERALL * 100:g}%, the "
        f"interaction tests and the per-cell claims they let through the other "
        f"{ALPHA_CELLS * 100:g}% (cells are judged one by one only where a comparison's interaction "
        f"test finds that its effect varies between them)."
    )


def _seed_sentences(comparisons: Sequence[Comparison]) -> list[str]:
    """How correlated one seed's pairs were: why the seed, not the pair, is the unit."""
    found = [c for c in comparisons if math.isfinite(c.intra_seed_correlation)]
    if not found:
        return []
    values = [c.intra_seed_correlation for c in found]
    spread = (
        format_number(values[0], 2)
        if len(values) == 1
        else f"{format_number(min(values), 2)} to {format_number(max(values), 2)} across comparisons"
    )
    return [
        f"Intra-seed correlation of the paired differences (after each cell's mean): {spread}. "
        f"Pairs of one seed share its initial weights and batch order, so they are not independent "
        f"replicates; the intervals count seeds, not pairs."
    ]


def scope_sentence(metric: str, split_per_seed: bool | None, evaluation_rows: int | None) -> str:
    """For which rows the intervals speak: a fresh draw of the data, or these evaluation rows."""
    split = "test" if metric == "final_test_accuracy" else "validation"
    if split_per_seed:
        return (
            f"Each seed drew its own {split} rows (dataset.split_per_seed), so the seed-to-seed "
            f"spread includes which rows evaluate: the intervals speak for new draws of rows from "
            f"this data set, not only the rows used."
        )
    rows = f" ({evaluation_rows} rows)" if evaluation_rows else ""
    if split_per_seed is None:
        return (
            f"Whether each seed drew its own {split} rows is not known to this analysis: if the rows "
            f"were fixed, the intervals speak for those rows{rows} only, and another draw of rows "
            f"would add variance they do not include."
        )
    return (
        f"The {split} rows were fixed for the whole sweep (dataset.split_per_seed false){rows}: the "
        f"intervals speak for those rows only; another draw of rows would add variance they do not "
        f"include."
    )


def rescored(metric: str, split_per_seed: bool | None) -> str:
    """Whether per-placement re-runs are scored on rows that did not choose their block."""
    if metric == "final_test_accuracy":
        return "The re-runs are scored on the test split, rows that played no part in choosing the block."
    if split_per_seed:
        return (
            "The re-runs are scored on validation rows drawn afresh for each re-run seed, not the "
            "draws that chose the block (they overlap them only by chance)."
        )
    return (
        "The re-runs could not be scored on rows that did not choose the block: without "
        "dataset.test_split or dataset.split_per_seed they are scored on the validation rows that "
        "picked it, so their accuracy may be overstated (selection bias)."
    )
