"""Numbers, p-values and metric names as the report writes them."""

from __future__ import annotations

import math
from typing import Literal

_METRIC_LABELS = {
    "final_val_accuracy": "final validation accuracy",
    "best_val_accuracy": "best validation accuracy",
    "final_accuracy": "final training accuracy",
}

Outcome = Literal["better", "worse", "indistinguishable", "cannot tell"]
Status = Literal["confirmed", "refuted", "cannot tell", "not tested"]


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
        return f"{name} = n/a".strip()
    if p < 0.001:
        return f"{name} < 0.001".strip()
    return f"{name} = {p:.2g}" if name else f"{p:.2g}"
