"""The expectations of EVIDENCE.md, each confirmed, refuted or left open by this sweep's data."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from sweep.analysis.comparisons import ALPHA, MIN_PAIRS, RESOLUTION_POINTS, paired
from sweep.analysis.estimate import Estimate
from sweep.analysis.factors import BestDropout
from sweep.analysis.formatting import format_number, format_p
from sweep.analysis.trials import PAIR_KEYS, has_bn
from sweep.analysis.variance_shift import VarianceShift

_RATIO_TOLERANCE = 1.5  # "about 1/(1-rate)": within this factor; ReLU means push it above
_LOW_DROPOUT = 0.2
_HIGH_DROPOUT = 0.5
_EPOCH_RESOLUTION = 0.5

Status = Literal["confirmed", "refuted", "cannot tell", "not tested"]


@dataclass(frozen=True)
class Expectation:
    """One expectation of EVIDENCE.md and what this sweep says about it."""

    id: int
    title: str
    status: Status
    detail: str


def _ci_text(est: Estimate, unit: str = "points") -> str:
    if est.n >= 2:
        return (
            f"\u0394 = {format_number(est.mean, signed=True)} {unit}, 95% CI "
            f"{format_number(est.ci_low)} to {format_number(est.ci_high)}, n = {est.n} pairs"
        )
    return f"\u0394 = {format_number(est.mean, signed=True)} {unit}, n = {est.n} pair(s)"


def _within_a_point(diff: Estimate) -> Status:
    """Confirmed when the CI lies inside +-1 point, refuted when it lies outside."""
    lo, hi = diff.ci_low, diff.ci_high
    if diff.n < MIN_PAIRS or not math.isfinite(lo):
        return "cannot tell"
    if lo > -RESOLUTION_POINTS and hi < RESOLUTION_POINTS:
        return "confirmed"
    if lo >= RESOLUTION_POINTS or hi <= -RESOLUTION_POINTS:
        return "refuted"
    return "cannot tell"


def expect_before_vs_after(usable: pd.DataFrame, metric: str) -> Expectation:
    title = "before_activation and after_activation differ by less than about 1 point"
    diffs, _ = paired(usable, "after_activation", "before_activation", metric)
    if diffs.empty:
        return Expectation(
            1,
            title,
            "not tested",
            "The sweep has no matched pairs of before_activation and after_activation.",
        )
    diff = Estimate.of(diffs)
    status = _within_a_point(diff)
    detail = f"after_activation \u2212 before_activation: {_ci_text(diff)}."
    by_opt = diffs.groupby(level="optimizer").mean()
    if len(by_opt) > 1:
        signs = ", ".join(f"{o} {format_number(v, signed=True)}" for o, v in by_opt.items())
        flips = (by_opt > 0).any() and (by_opt < 0).any()
        detail += (
            f" Mean \u0394 by optimizer: {signs}; the sign "
            f"{'changes' if flips else 'does not change'} across optimizers (means only)."
        )
    detail += " One data set per sweep, so the sign across data sets is not tested here."
    return Expectation(1, title, status, detail)


def expect_after_dropout(usable: pd.DataFrame, metric: str, shifts: Sequence[VarianceShift]) -> Expectation:
    title = (
        "after_dropout is close to the others at dropout 0.1, clearly worse at dropout >= 0.5, "
        "and its BN variance ratio is about 1/(1\u2212rate)"
    )
    present = set(usable["placement"])
    if "after_dropout" not in present or len(present) < 2:
        return Expectation(2, title, "not tested", "The sweep needs after_dropout and another placement.")
    others = sorted(present - {"after_dropout"})
    candidates = [p for p in others if has_bn(p)] or others
    ref = max(candidates, key=lambda p: usable.loc[usable["placement"] == p, metric].mean())
    parts: dict[str, Status] = {}
    details = []

    high = usable[usable["dropout"] >= _HIGH_DROPOUT]
    high_diff = Estimate.of(paired(high, "after_dropout", ref, metric)[0])
    if high_diff.n:
        if high_diff.n < MIN_PAIRS or not math.isfinite(high_diff.ci_low):
            parts["high"] = "cannot tell"
        elif high_diff.ci_high < -RESOLUTION_POINTS:
            parts["high"] = "confirmed"
        elif high_diff.ci_low > -RESOLUTION_POINTS:
            parts["high"] = "refuted"
        else:
            parts["high"] = "cannot tell"
        details.append(
            f"at dropout \u2265 {_HIGH_DROPOUT:g}, after_dropout \u2212 {ref}: "
            f"{_ci_text(high_diff)} ({parts['high']})"
        )
    else:
        details.append(f"no pairs at dropout \u2265 {_HIGH_DROPOUT:g} (not tested)")

    low = usable[(usable["dropout"] > 0) & (usable["dropout"] <= _LOW_DROPOUT)]
    low_diff = Estimate.of(paired(low, "after_dropout", ref, metric)[0])
    if low_diff.n:
        parts["low"] = _within_a_point(low_diff)
        details.append(
            f"at dropout in (0, {_LOW_DROPOUT:g}], after_dropout \u2212 {ref}: "
            f"{_ci_text(low_diff)} ({parts['low']})"
        )

    ratios = [s for s in shifts if s.placement == "after_dropout" and s.expected and s.dropout > 0]
    if ratios:
        ok = all(
            s.ratio.mean > 1 and 1 / _RATIO_TOLERANCE <= s.ratio.mean / s.expected <= _RATIO_TOLERANCE
            for s in ratios
            if s.expected is not None
        )
        parts["ratio"] = "confirmed" if ok else "refuted"
        listed = "; ".join(
            f"dropout {s.dropout:g}: {format_number(s.ratio.mean, 2)} vs {format_number(s.expected, 2)}"
            for s in ratios
        )
        details.append(
            f"variance ratio (measured vs 1/(1\u2212rate), within a factor "
            f"{_RATIO_TOLERANCE:g}): {listed} ({parts['ratio']})"
        )
    else:
        details.append("no variance-shift measurements at dropout > 0 (not tested)")

    status: Status
    if "high" not in parts and "ratio" not in parts:
        status = "not tested"
    elif "refuted" in parts.values():
        status = "refuted"
    elif {"high", "ratio"} <= set(parts) and set(parts.values()) == {"confirmed"}:
        status = "confirmed"
    else:
        status = "cannot tell"
    text = "; ".join(details)
    return Expectation(2, title, status, text[:1].upper() + text[1:] + ".")


def expect_less_dropout_with_bn(
    usable: pd.DataFrame, metric: str, best: Sequence[BestDropout]
) -> Expectation:
    title = "With BN the best dropout rate is lower than without it"
    groups = {b.group: b for b in best}
    if {"with BN", "without BN"} - set(groups) or usable["dropout"].nunique() < 2:
        return Expectation(
            3,
            title,
            "not tested",
            "The sweep needs the none placement, a BN placement and at least two dropout rates.",
        )
    bn, plain = groups["with BN"], groups["without BN"]
    detail = (
        f"Best dropout with BN: {bn.dropout:g} (mean {format_number(bn.mean * 100)}%); "
        f"without BN: {plain.dropout:g} (mean {format_number(plain.mean * 100)}%)."
    )
    if bn.dropout == plain.dropout:
        return Expectation(
            3,
            title,
            "cannot tell",
            detail + " The same rate wins in both groups; a finer dropout grid could separate them.",
        )
    is_bn = usable["placement"].map(has_bn).astype(bool)
    p_values = []
    for group_mask, own, other in ((is_bn, bn, plain), (~is_bn, plain, bn)):
        rows = usable[group_mask]
        a = rows.loc[rows["dropout"] == own.dropout, metric].to_numpy(dtype=float)
        b = rows.loc[rows["dropout"] == other.dropout, metric].to_numpy(dtype=float)
        spread = np.std(np.concatenate([a, b])) if len(a) + len(b) else 0.0
        p = (
            float(stats.ttest_ind(a, b, equal_var=False).pvalue)
            if len(a) >= 2 and len(b) >= 2 and spread > 1e-12
            else math.nan
        )
        p_values.append(p)
    detail += (
        f" Each group's preference between the two rates (Welch t-test): with BN "
        f"{format_p(p_values[0], 'p')}, without BN {format_p(p_values[1], 'p')}."
    )
    if not all(math.isfinite(p) and p < ALPHA for p in p_values):
        return Expectation(
            3, title, "cannot tell", detail + " At least one group's preference could be noise."
        )
    status: Status = "confirmed" if bn.dropout < plain.dropout else "refuted"
    return Expectation(3, title, status, detail)


def expect_faster_with_bn(finished: pd.DataFrame, epochs: pd.DataFrame, target: float) -> Expectation:
    title = "BN placements reach a fixed validation accuracy in fewer epochs than none"
    rows = finished[finished["run_id"].isin(set(epochs.index))].copy()
    is_bn = rows["placement"].map(has_bn).astype(bool)
    if rows.empty or not is_bn.any() or is_bn.all():
        return Expectation(
            4, title, "not tested", "The sweep needs per-epoch curves of both none and a BN placement."
        )
    reached = rows["run_id"].map(epochs["reached"])
    # A trial that never got there counts as one epoch past its last: a lower bound.
    rows["epochs"] = reached.fillna(rows["run_id"].map(epochs["last"]) + 1)
    rows["group"] = np.where(is_bn, "bn", "none")
    keys = list(PAIR_KEYS)
    per_key = rows.groupby([*keys, "group"])["epochs"].mean().unstack("group").dropna()
    diffs = per_key["bn"] - per_key["none"] if not per_key.empty else pd.Series(dtype=float)
    diff = Estimate.of(diffs)
    share = {g: float(reached[rows["group"] == g].notna().mean()) for g in ("bn", "none")}
    detail = (
        f"Target {format_number(target * 100, 0)}% validation accuracy; BN (mean over BN "
        f"placements) \u2212 none: {_ci_text(diff, 'epochs')}; reached by "
        f"{format_number(share['bn'] * 100, 0)}% of BN trials and "
        f"{format_number(share['none'] * 100, 0)}% of none trials (a trial that never reached "
        f"it counts as one epoch past its last)."
    )
    if len(diffs) and diffs.index.get_level_values("optimizer").nunique() > 1:
        by_opt = diffs.groupby(level="optimizer").mean()
        detail += (
            " Mean by optimizer: "
            + ", ".join(f"{o} {format_number(v, signed=True)}" for o, v in by_opt.items())
            + " epochs."
        )
    status: Status
    if diff.n < MIN_PAIRS or not math.isfinite(diff.ci_low) or reached.notna().sum() == 0:
        status = "cannot tell"
    elif diff.ci_high < 0:
        status = "confirmed"
    elif (rows["epochs"] == 1).all():
        status = "cannot tell"
        detail += " Every trial reached the target in the first epoch; a higher target would tell."
    elif diff.ci_low >= -_EPOCH_RESOLUTION:
        status = "refuted"
    else:
        status = "cannot tell"
    return Expectation(4, title, status, detail)
