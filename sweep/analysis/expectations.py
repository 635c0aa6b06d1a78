"""The expectations of EVIDENCE.md, each confirmed, refuted or left open by this sweep's data.

Accuracy checks read paired comparisons with the verdict's rule (`comparisons.classify`), on
intervals corrected over the expectation's own comparisons; where the verdict already compared the
same two placements on the same trials, that comparison is reused, so the two cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from sweep.analysis.comparisons import ALPHA, MIN_SEEDS, Comparison, compare, paired_t_p
from sweep.analysis.convergence import TimeDifference, describe_difference
from sweep.analysis.factors import BestDropout
from sweep.analysis.formatting import difference_text, format_interval, format_number, format_p
from sweep.analysis.trials import PAIR_KEYS, has_bn
from sweep.analysis.variance_shift import VarianceShift

RATIO_TOLERANCE = 1.25  # "about" a predicted variance ratio: within this factor
LOW_DROPOUT = 0.2
HIGH_DROPOUT = 0.5
EPOCH_RESOLUTION = 0.5  # a convergence gap smaller than this many epochs does not count
# after_dropout is held against the first of these the sweep has: fixed here, not picked by the data.
_AFTER_DROPOUT_REFERENCES = ("before_activation", "after_activation", "none")

_OWN_SETTINGS = (
    "each placement was re-run at its own tuned settings (per-placement tuning), so the placements "
    "share no dropout rate to compare at; the report lists the settings each one chose"
)

Status = Literal["confirmed", "refuted", "cannot tell", "not tested"]


@dataclass(frozen=True)
class Expectation:
    """One expectation of EVIDENCE.md and what this sweep says about it."""

    id: int
    title: str
    status: Status
    detail: str


def within_margin(c: Comparison) -> Status:
    """Confirmed when the comparison is equivalent, refuted when its interval lies beyond the margin."""
    if c.outcome == "equivalent":
        return "confirmed"
    return "refuted" if c.beyond_margin else "cannot tell"


def _comparison_text(c: Comparison) -> str:
    return f"{c.placement} \u2212 {c.reference}: {difference_text(c.diff)} ({c.outcome})"


def expect_before_vs_after(
    usable: pd.DataFrame,
    metric: str,
    margin: float,
    made: Sequence[Comparison],
    keys: Sequence[str] = PAIR_KEYS,
) -> Expectation:
    title = f"before_activation and after_activation differ by less than about {margin:g} point(s)"
    pair = {"after_activation", "before_activation"}
    c = next((c for c in made if {c.placement, c.reference} == pair), None)
    if c is None:
        (c,) = compare([(usable, "after_activation", "before_activation")], metric, margin, keys=keys)
    if c.n_pairs == 0:
        missing = "The sweep has no matched pairs of before_activation and after_activation."
        return Expectation(1, title, "not tested", missing)
    status = within_margin(c)
    detail = f"{_comparison_text(c)}."
    rows = usable[usable["placement"].isin(pair)]
    by_opt = rows.pivot_table(index="optimizer", columns="placement", values=metric, aggfunc="mean").dropna()
    if len(by_opt) > 1:
        means = (by_opt["after_activation"] - by_opt["before_activation"]) * 100
        signs = ", ".join(f"{o} {format_number(v, signed=True)}" for o, v in means.items())
        flips = (means > 0).any() and (means < 0).any()
        detail += (
            f" Mean after_activation \u2212 before_activation by optimizer: {signs}; the sign "
            f"{'changes' if flips else 'does not change'} across optimizers (means only)."
        )
    detail += " One data set per sweep, so the sign across data sets is not tested here."
    return Expectation(1, title, status, detail)


def expect_after_dropout(
    usable: pd.DataFrame,
    metric: str,
    margin: float,
    shifts: Sequence[VarianceShift],
    own_settings: bool = False,
) -> Expectation:
    """`own_settings`: each placement ran at its own tuned block, so no dropout rate is shared."""
    title = (
        "after_dropout is close to the others at dropout 0.1, clearly worse at dropout >= 0.5, "
        "and its BN variance ratio is what Li et al.'s formula predicts"
    )
    present = set(usable["placement"])
    ref = next((p for p in _AFTER_DROPOUT_REFERENCES if p in present), None)
    if "after_dropout" not in present or ref is None:
        return Expectation(2, title, "not tested", "The sweep needs after_dropout and another placement.")
    high = usable[usable["dropout"] >= HIGH_DROPOUT]
    low = usable[(usable["dropout"] > 0) & (usable["dropout"] <= LOW_DROPOUT)]
    c_high, c_low = compare([(high, "after_dropout", ref), (low, "after_dropout", ref)], metric, margin)
    parts: dict[str, Status] = {}
    details = []
    if own_settings:
        details.append(f"accuracy not tested: {_OWN_SETTINGS}")
    elif c_high.n_pairs:
        if c_high.outcome == "worse" and c_high.beyond_margin:
            parts["high"] = "confirmed"
        elif c_high.outcome in ("equivalent", "better"):
            parts["high"] = "refuted"
        else:
            parts["high"] = "cannot tell"
        details.append(f"at dropout \u2265 {HIGH_DROPOUT:g}, {_comparison_text(c_high)}: {parts['high']}")
    else:
        details.append(f"no pairs at dropout \u2265 {HIGH_DROPOUT:g} (not tested)")
    if c_low.n_pairs and not own_settings:
        parts["low"] = within_margin(c_low)
        details.append(f"at dropout in (0, {LOW_DROPOUT:g}], {_comparison_text(c_low)}: {parts['low']}")

    ratio, ratio_detail = _ratio_part(shifts)
    if ratio is not None:
        parts["ratio"] = ratio
    details.append(ratio_detail)
    text = "; ".join(details)
    return Expectation(2, title, _after_dropout_status(parts), text[:1].upper() + text[1:] + ".")


def _ratio_part(shifts: Sequence[VarianceShift]) -> tuple[Status | None, str]:
    """after_dropout's BN variance ratios against Li et al.'s formula: a status (None: not
    measured) and its detail."""
    ratios = [s for s in shifts if s.placement == "after_dropout" and s.expected and s.dropout > 0]
    if not ratios:
        return None, "no variance-shift measurements at dropout > 0 (not tested)"
    verdicts = [_ratio_status(s) for s in ratios]
    status: Status = (
        "refuted"
        if "refuted" in verdicts
        else "confirmed"
        if set(verdicts) == {"confirmed"}
        else "cannot tell"
    )
    listed = "; ".join(_ratio_text(s, v) for s, v in zip(ratios, verdicts, strict=True))
    return status, f"BN variance ratio: {listed}"


def _after_dropout_status(parts: dict[str, Status]) -> Status:
    """Confirmed only when the high-dropout accuracy and the ratio both are; any refuted part refutes."""
    if "high" not in parts and "ratio" not in parts:
        return "not tested"
    if "refuted" in parts.values():
        return "refuted"
    if {"high", "ratio"} <= set(parts) and set(parts.values()) == {"confirmed"}:
        return "confirmed"
    return "cannot tell"


def _ratio_status(s: VarianceShift) -> Status:
    """Measured against Li et al.'s formula within RATIO_TOLERANCE, on the interval across seeds.

    Confirmed only where the interval also holds the prediction: one that excludes it shows the
    formula is off, by however little (`_ratio_offset` says by how much), so it stays open.
    """
    assert s.expected is not None
    if s.expected_is_lower_bound:
        # Without the measured means the formula only says "at least 1/(1 - rate)".
        floor = s.expected / RATIO_TOLERANCE
        if not s.ratio.has_interval:
            return "cannot tell"
        if s.ratio.ci_high < floor:
            return "refuted"
        return "confirmed" if s.ratio.ci_low >= floor and s.ratio.ci_high >= s.expected else "cannot tell"
    rel = s.relative
    if rel is None or not rel.has_interval:
        return "cannot tell"
    if rel.ci_high < 1 / RATIO_TOLERANCE or rel.ci_low > RATIO_TOLERANCE:
        return "refuted"
    within = rel.ci_low >= 1 / RATIO_TOLERANCE and rel.ci_high <= RATIO_TOLERANCE
    return "confirmed" if within and rel.ci_low <= 1 <= rel.ci_high else "cannot tell"


def _ratio_offset(s: VarianceShift) -> str:
    """How far below or above the prediction an interval that excludes it lies, in percent."""
    assert s.expected is not None
    if s.expected_is_lower_bound:
        rel = s.ratio
        low, high = rel.ci_low / s.expected, rel.ci_high / s.expected
        if not rel.has_interval or high >= 1:  # "at least": only an interval below it excludes it
            return ""
    else:
        if s.relative is None or not s.relative.has_interval:
            return ""
        low, high = s.relative.ci_low, s.relative.ci_high
        if low <= 1 <= high:
            return ""
    side = "below" if high < 1 else "above"
    near, far = sorted((abs(1 - low) * 100, abs(1 - high) * 100))
    digits = 0 if near >= 1 else 1  # "0.4-6%", never "0-6%": the interval does not reach it
    return (
        f"; its interval excludes the prediction, lying {format_number(near, digits)}\u2013"
        f"{format_number(far, digits)}% {side} it"
    )


def _ratio_text(s: VarianceShift, status: Status) -> str:
    measured = (
        f"at dropout {s.dropout:g}, {format_number(s.ratio.mean, 2)} (geometric mean over seeds, 95% CI "
        f"{format_interval(s.ratio, digits=2)}, n = {s.ratio.n} seeds)"
    )
    offset = _ratio_offset(s)
    if s.expected_is_lower_bound:
        return (
            f"{measured} against at least {format_number(s.expected, 2)} = 1/(1\u2212rate), the "
            f"formula's least value, as the inputs' means were not recorded{offset} ({status})"
        )
    predicted = format_number(s.expected, 2)
    return f"{measured} against {predicted} from the measured means and variances{offset} ({status})"


def expect_less_dropout_with_bn(
    usable: pd.DataFrame, metric: str, best: Sequence[BestDropout], own_settings: bool = False
) -> Expectation:
    """`own_settings`: each placement ran at its own tuned block, so no dropout rate is shared.

    Both groups must prefer their own best rate to the other group's (an intersection-union test:
    each at ALPHA, the claim errs at most ALPHA); each test is corrected for the rates having been
    chosen on these trials.
    """
    title = "With BN the best dropout rate is lower than without it"
    if own_settings:
        return Expectation(3, title, "not tested", _OWN_SETTINGS[:1].upper() + _OWN_SETTINGS[1:] + ".")
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
    levels = usable["dropout"].nunique()
    pairs = levels * (levels - 1) // 2
    p_values = [
        min(1.0, _preference_p(usable[mask], own.dropout, other.dropout, metric) * pairs)
        for mask, own, other in ((is_bn, bn, plain), (~is_bn, plain, bn))
    ]
    detail += (
        f" Each group's preference between the two rates: a paired t-test over seeds (each seed's "
        f"mean at one rate minus its mean at the other), Bonferroni over the {pairs} pair(s) of the "
        f"{levels} dropout rates, as both rates were picked as best on these same trials and a test "
        f"of the picked pair alone would favour it: with BN adjusted {format_p(p_values[0], 'p')}, "
        f"without BN adjusted {format_p(p_values[1], 'p')}."
    )
    if not all(math.isfinite(p) and p < ALPHA for p in p_values):
        return Expectation(
            3, title, "cannot tell", detail + " At least one group's preference could be noise."
        )
    status: Status = "confirmed" if bn.dropout < plain.dropout else "refuted"
    return Expectation(3, title, status, detail)


def _preference_p(rows: pd.DataFrame, own: float, other: float, metric: str) -> float:
    """Two-sided p of the paired t over seeds of the mean `metric` at dropout `own` minus `other`;
    NaN with fewer than MIN_SEEDS seeds at both rates or no spread."""
    by_seed = rows[rows["dropout"].isin((own, other))].groupby(["seed", "dropout"])[metric].mean()
    wide = by_seed.unstack("dropout").dropna()
    if own not in wide.columns or other not in wide.columns:
        return math.nan
    diffs = (wide[own] - wide[other]).to_numpy(dtype=float)
    if len(diffs) < MIN_SEEDS or np.std(diffs) <= 1e-12:
        return math.nan
    return paired_t_p(diffs)


def expect_faster_with_bn(speed: TimeDifference | None, times: pd.DataFrame, target: float) -> Expectation:
    title = "BN placements reach a fixed validation accuracy in fewer epochs than none"
    if speed is None:
        return Expectation(
            4, title, "not tested", "The sweep needs per-epoch curves of both none and a BN placement."
        )
    d = speed.diff
    detail = describe_difference(speed, target)
    status: Status
    if not d.has_interval or not times["reached"].any():
        status = "cannot tell"
    elif d.ci_high < 0:
        status = "confirmed"
    elif d.std == 0 and (times["epochs"] == times["epochs"].min()).all():
        status = "cannot tell"
        detail += " Every trial reached the target in the same epoch; a higher target would tell."
    elif d.ci_low >= -EPOCH_RESOLUTION and not speed.none_censored:
        status = "refuted"  # with none censored the true gap is larger than this one: no refutation
    else:
        status = "cannot tell"
    return Expectation(4, title, status, detail)
