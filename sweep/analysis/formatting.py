"""Numbers, p-values, intervals and metric names as the report writes them."""

from __future__ import annotations

import math

from sweep.analysis.estimate import LEVEL, Estimate

TOO_FEW = "too few seeds for an interval"
MAX_DIGITS = 6  # an interval end this close to 0 prints as 0.000000

_METRIC_LABELS = {
    "final_val_accuracy": "final validation accuracy",
    "final_test_accuracy": "final test accuracy",
    "best_val_accuracy": "best validation accuracy",
    "final_accuracy": "final training accuracy",
}


def metric_label(metric: str) -> str:
    """The metric's name in words."""
    return _METRIC_LABELS.get(metric, metric)


def format_number(x: float | None, digits: int = 1, signed: bool = False) -> str:
    """`x` rounded, with a true minus sign, or "n/a" when it is missing."""
    if x is None or not math.isfinite(x):
        return "n/a"
    x = round(x, digits) or 0.0  # no "-0.0"
    text = f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"
    return text.replace("-", "\u2212")


def format_p(p: float, name: str = "") -> str:
    """A p-value to two significant digits, as "p = 0.03" or "p < 0.001" when `name` is "p"."""
    if not math.isfinite(p):
        return f"{name} = n/a" if name else "n/a"
    if p < 0.001:
        return f"{name} < 0.001".strip()
    return f"{name} = {p:.2g}" if name else f"{p:.2g}"


def format_interval(est: Estimate, scale: float = 1.0, digits: int = 1) -> str:
    """ "low to high", or what stands in for an interval too few values could give.

    An end that is not 0 never prints as 0: it gets the digits that show its sign ("0.03 to 4.6"),
    so an interval that excludes 0 never reads as touching it.
    """
    if not est.has_interval:
        return TOO_FEW if est.n else "n/a"
    return f"{format_nonzero(est.ci_low * scale, digits)} to {format_nonzero(est.ci_high * scale, digits)}"


def format_nonzero(x: float, digits: int = 1) -> str:
    """`x` as `format_number` writes it, with more digits where those would round it to 0."""
    shown = digits
    while x != 0 and round(x, shown) == 0 and shown < MAX_DIGITS:
        shown += 1
    return format_number(x, shown)


def interval_name(est: Estimate) -> str:
    """ "95% CI", or "simultaneous CI (each at 99.2%)" for an interval of a corrected family."""
    if est.level <= LEVEL + 1e-9:
        return "95% CI"
    return f"simultaneous CI (each at {est.level * 100:.4g}%)"


def difference_text(diff: Estimate, unit: str = "points", pairs: int | None = None) -> str:
    """ "Δ = −0.8 points, simultaneous CI (each at 99.2%) −1.5 to −0.1, n = 5 seeds (20 pairs)",
    or without the interval when too few; `diff` is over seeds (comparisons.py)."""
    mean = f"\u0394 = {format_number(diff.mean, signed=True)} {unit}"
    n = f"n = {diff.n} seed(s)" + (f" ({pairs} pairs)" if pairs is not None else "")
    if not diff.has_interval:
        return f"{mean}, {n}, too few seeds for an interval"
    return f"{mean}, {interval_name(diff)} {format_interval(diff)}, {n}"
