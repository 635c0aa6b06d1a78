"""The verdict: the report's answer in sentences, each read off the numbers it quotes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from sweep.analysis.comparisons import ALPHA, MIN_PAIRS, Comparison
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
) -> list[str]:
    """The verdict, most important first.

    Only what a test or an interval carries: the cell-mean tables' notes stay with their tables.
    """
    label = metric_label(metric)
    out = [describe_own(own)] if own else []
    if best is None:
        which = "re-run" if own else "trial"
        return [*out, f"No {which} finished with a finite {label}; there is nothing to compare."]
    out += [describe(equal_length)] if equal_length else []
    out.append(_accuracy_sentence(metric))
    est = next(s for s in summaries if s.placement == best).metric
    ci = f"95% CI {format_interval(est, 100)}%, n = {est.n} trials" if est.has_interval else ""
    ci = ci or f"n = {est.n}, {TOO_FEW}"
    out.append(f"Highest mean {label}: {best} ({format_number(est.mean * 100)}%, {ci}).")
    if adaptive is not None:
        out.append(
            "Seeds were added adaptively while comparisons were undecided: the sequential calls "
            "(section Adaptive seeds) are the ones that keep the error rate over the repeated "
            "looks; the fixed-sample intervals below, computed once on the final data, are "
            "descriptive."
        )
    out += _comparison_sentences(
        comparisons, interactions, reference, margin, label, cells, n_seeds, own is not None
    )
    out += _interaction_summary(interactions)

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
    out += _time_sentences(summaries, speed, target, target_is_default)

    fed = [s for s in shifts if s.expected is not None and s.dropout > 0]
    if fed:
        listed = ", ".join(
            f"{format_number(s.ratio.mean, 2)} at dropout {s.dropout:g} "
            f"({'at least ' if s.expected_is_lower_bound else ''}{format_number(s.expected, 2)} predicted)"
            for s in fed
        )
        names = sorted({s.placement for s in fed})
        out.append(
            f"In {', '.join(names)}, BN's moving variance divided by the variance it sees at test "
            f"time (geometric mean over trials) is {listed}; Li et al. 2019 predict "
            f"1/p + (1/p \u2212 1)\u00b7c\u00b2/v for keep rate p and input mean c and variance v, "
            f"at least 1/(1\u2212rate)."
        )
    return out


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
        f"Intervals are Bonferroni-simultaneous 95% t-intervals over the {family} testable "
        f"comparison(s), p-values Bonferroni-adjusted to match"
        if family
        else f"No comparison has the {MIN_PAIRS} pairs with some spread that an interval needs"
    )
    matched = "seed (each placement at its own settings)" if own_settings else "dropout, optimizer and seed"
    out = [
        f"\u0394 below is {what}, in percentage points of {label}, matched on {matched}. "
        f"{intervals}. A comparison is equivalent when its whole interval lies inside "
        f"\u00b1{margin:g} point(s), better or worse when it lies wholly above or below 0, and "
        f"otherwise this sweep cannot tell."
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
    numbers = difference_text(d)
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
        "the observed SD of the paired differences"
        if d.n >= 2 and d.std > 0
        else "the spread across trials, as too few pairs measure the paired SD"
    )
    return (
        f"{sentence}; resolving a {c.margin:g}-point difference at 80% power and \u03b1 = "
        f"{ALPHA:g}/{max(1, c.family)} needs about {c.pairs_needed} pairs, i.e. about {c.seeds_needed} "
        f"seeds at {cells} pairs per seed (this sweep has {n_seeds}; SD "
        f"{format_number(c.power_sd)} points from {source})."
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
        f"\u00d7 optimizer cell (interaction F({i.df_cells}, {i.df_resid}) = "
        f"{format_number(i.f_value, 1)}, Bonferroni-adjusted {format_p(i.p_adjusted, 'p')}), each cell "
        f"read off its simultaneous interval by the rule above; the overall "
        f"\u0394 = {format_number(c.diff.mean, signed=True)} points averages over the cells and is not "
        f"the answer."
    )


def _interaction_summary(interactions: Sequence[Interaction]) -> list[str]:
    """One sentence on the interaction tests that found nothing."""
    quiet = [i for i in interactions if math.isfinite(i.p_adjusted) and not i.depends]
    if not quiet:
        return []
    smallest = min(i.p_adjusted for i in quiet)
    which = "No comparison's" if len(quiet) == len(interactions) else "No other comparison's"
    return [
        f"{which} effect is shown to depend on dropout or optimizer (OLS F-tests of the paired "
        f"differences across the {max(i.n_cells for i in quiet)} dropout \u00d7 optimizer cells, "
        f"Bonferroni over {quiet[0].family} comparison(s): smallest adjusted {format_p(smallest, 'p')}); "
        f"the overall \u0394 stands, though a smaller dependence cannot be ruled out."
    ]
