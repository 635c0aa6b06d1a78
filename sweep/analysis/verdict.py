"""The verdict: the report's answer in sentences."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from sweep.analysis.comparisons import Comparison
from sweep.analysis.convergence import DEFAULT_TARGET_SHARE
from sweep.analysis.factors import Interaction
from sweep.analysis.formatting import format_number, format_p, metric_label
from sweep.analysis.placements import PlacementSummary
from sweep.analysis.variance_shift import VarianceShift


def verdict_sentences(
    trials: pd.DataFrame,
    summaries: Sequence[PlacementSummary],
    comparisons: Sequence[Comparison],
    shifts: Sequence[VarianceShift],
    interactions: Sequence[Interaction],
    metric: str,
    best: str | None,
    target: float,
    target_is_default: bool,
    cells: int,
    n_seeds: int,
) -> list[str]:
    label = metric_label(metric)
    if best is None:
        return [f"No trial finished with a finite {label}; there is nothing to compare."]
    lead = next(s for s in summaries if s.placement == best)
    est = lead.metric
    ci = (
        f", 95% CI {format_number(est.ci_low * 100)} to {format_number(est.ci_high * 100)}%"
        if est.n >= 2
        else ""
    )
    out = [f"Highest mean {label}: {best} ({format_number(est.mean * 100)}%{ci}, n = {est.n} trials)."]
    if not comparisons:
        out.append("Only one placement has usable trials, so there is nothing to compare.")
    else:
        out.append(
            f"\u0394 below is each placement minus {best} in percentage points of {label}, "
            f"matched on dropout, optimizer and seed; p-values are Holm-adjusted paired t-tests."
        )
    for c in comparisons:
        out.append(_comparison_sentence(c, cells, n_seeds))
    if comparisons and not any(c.outcome in ("worse", "better") for c in comparisons):
        out.append(f"No placement is shown to differ from {best}; it leads by its mean only.")

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

    timed = [s for s in summaries if s.n_with_curves]
    if timed and math.isfinite(target):
        how = (
            f" (the default target: {DEFAULT_TARGET_SHARE:.0%} of the best mean final validation "
            f"accuracy, rounded down)"
            if target_is_default
            else ""
        )
        listed = ", ".join(
            f"{s.placement} {format_number(s.epochs_to_target.mean)} "
            f"({format_number(s.reached_share * 100, 0)}% reached it)"
            for s in timed
        )
        out.append(
            f"Mean epochs to reach {format_number(target * 100, 0)}% validation accuracy{how}, "
            f"over the trials that reached it: {listed}."
        )

    fed = [s for s in shifts if s.expected is not None and s.dropout > 0]
    if fed:
        listed = ", ".join(
            f"{format_number(s.ratio.mean, 2)} at dropout {s.dropout:g} "
            f"(1/(1\u2212rate) = {format_number(s.expected, 2)})"
            for s in fed
        )
        names = sorted({s.placement for s in fed})
        out.append(
            f"In {', '.join(names)}, BN's moving variance divided by the variance it sees at "
            f"test time is {listed}; dropout in front of BN predicts 1/(1\u2212rate) "
            f"(Li et al. 2019)."
        )
    out.extend(i.note for i in interactions if i.note)
    return out


def _comparison_sentence(c: Comparison, cells: int, n_seeds: int) -> str:
    d = c.diff
    ci = (
        f", 95% CI {format_number(d.ci_low)} to {format_number(d.ci_high)}"
        if d.n >= 2 and math.isfinite(d.ci_low)
        else ""
    )
    stats_text = f"\u0394 = {format_number(d.mean, signed=True)} points{ci}, n = {d.n} pairs"
    if c.outcome in ("worse", "better"):
        return (
            f"{c.placement} is {c.outcome} than {c.reference} by "
            f"{format_number(abs(d.mean))} points on this data ({stats_text}, Holm "
            f"{format_p(c.p_holm, 'p')}, d_z = {format_number(c.effect_size, 2)})."
        )
    if c.outcome == "indistinguishable":
        return f"{c.reference} and {c.placement} are indistinguishable on this data ({stats_text})."
    sentence = f"This sweep cannot tell {c.placement} from {c.reference} ({stats_text})"
    if c.pairs_needed is None or c.seeds_needed is None:
        return sentence + "; run at least 2 seeds to estimate how many would be needed."
    source = (
        "the observed SD of the paired differences"
        if d.n >= 2 and d.std > 0
        else "the spread across trials, as too few pairs measure the paired SD"
    )
    return (
        f"{sentence}; resolving a 1-point difference needs about {c.pairs_needed} pairs, "
        f"i.e. about {c.seeds_needed} seeds at {cells} pairs per seed (this sweep has "
        f"{n_seeds}; SD {format_number(c.power_sd)} points from {source})."
    )
