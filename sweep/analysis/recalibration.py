"""Does re-estimating BN's statistics without dropout remove after_dropout's deficit?

EVIDENCE.md's mechanism for after_dropout (Li et al. 2019): dropout in front of BN makes BN's
moving variance, gathered with dropout on, wrong for inference with dropout off. Trials record
the accuracy again after BN's statistics are re-estimated with dropout off
(`final_*_accuracy_bn_recalibrated`). Read here, paired per trial and judged by seed (each seed's
mean gain, S - 1 df), and against a reference placement: after_dropout's deficit with its own
statistics and with the recalibrated ones, both in one Bonferroni family with the verdict's rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sweep.analysis.comparisons import Comparison, compare
from sweep.analysis.estimate import Estimate
from sweep.analysis.formatting import difference_text, format_interval, format_number, metric_label
from sweep.analysis.trials import PAIR_KEYS

# after_dropout is held against the first of these the sweep has: fixed here, not picked by the data.
REFERENCES = ("before_activation", "after_activation", "none")
PLAIN = "final_val_accuracy"
RECALIBRATED = "final_val_accuracy_bn_recalibrated"


@dataclass(frozen=True)
class Recalibration:
    """after_dropout (dropout > 0) with BN statistics re-estimated without dropout."""

    accuracy: str  # the plain accuracy column the recalibrated one is read against
    gain: Estimate  # recalibrated - plain, points: mean of each seed's mean gain, 95% t-interval over seeds
    reference: str | None  # the placement the deficit is measured against
    deficit: Comparison | None  # after_dropout - reference, BN statistics as trained
    recalibrated: Comparison | None  # after_dropout (recalibrated) - reference
    gain_trials: int = 0  # after_dropout trials behind the per-seed mean gains


def recalibration(compared: pd.DataFrame, margin: float) -> Recalibration | None:
    """None when the trials recorded no recalibrated accuracy for after_dropout at dropout > 0.

    On validation accuracy whatever the verdict is on: the recalibrated accuracy trials record
    for every sweep is the validation one (the test one only where there is a test split).
    """
    plain, column = PLAIN, RECALIBRATED
    rows = compared[compared["dropout"] > 0]
    mine = rows["placement"] == "after_dropout"
    if column not in rows.columns or not mine.any():
        return None
    recal = pd.to_numeric(rows[column], errors="coerce").astype(float)
    if not np.isfinite(recal[mine].to_numpy()).any():
        return None
    gains = (recal[mine] - rows.loc[mine, plain]) * 100
    gain = Estimate.of(gains, seeds=rows.loc[mine, "seed"])
    trials = int(np.isfinite(gains.to_numpy(dtype=float)).sum())
    present = set(rows["placement"])
    reference = next((p for p in REFERENCES if p in present), None)
    if reference is None:
        return Recalibration(plain, gain, None, None, None, trials)
    swapped = rows.copy()
    swapped.loc[mine, plain] = recal[mine]
    swapped = swapped[~mine | np.isfinite(recal)]
    deficit, fixed = compare(
        [(rows, "after_dropout", reference), (swapped, "after_dropout", reference)],
        plain,
        margin,
        keys=PAIR_KEYS,
    )
    return Recalibration(plain, gain, reference, deficit, fixed, trials)


def describe(r: Recalibration) -> str:
    """One sentence: whether recalibrated BN statistics remove after_dropout's deficit."""
    label = metric_label(r.accuracy)
    head = (
        f"Re-estimating after_dropout's BN statistics without dropout changes its {label} by "
        f"{gain_text(r.gain, r.gain_trials)}"
    )
    if r.deficit is None or r.recalibrated is None or r.reference is None:
        return f"{head}; no other placement to measure a deficit against."
    d, f = r.deficit, r.recalibrated
    against = (
        f"after_dropout against {r.reference}: as trained {d.outcome} ({difference_text(d.diff)}), "
        f"recalibrated {f.outcome} ({difference_text(f.diff)})"
    )
    if d.outcome != "worse":
        answer = "there is no established deficit for recalibration to remove"
    elif f.outcome in ("equivalent", "better"):
        answer = "recalibration removes the deficit"
    elif f.outcome == "worse":
        answer = "recalibration does not remove the deficit"
    else:
        answer = "whether recalibration removes the deficit cannot be told"
    # Its intervals are a family of their own (compare's 2.5%), outside the one error rate the
    # verdict's placement claims share (analysis._families): the sentence says so.
    own = "a check with an error rate of its own, 2.5%, outside the verdict's 5%"
    return f"{head}; {against}: {answer} ({own})."


def gain_text(gain: Estimate, trials: int) -> str:
    """ "Δ = +0.4 points, 95% CI 0.1 to 0.7, n = 4 seed(s) (12 trials)", or without the interval
    when too few seeds; `gain` is over seeds."""
    mean = f"\u0394 = {format_number(gain.mean, signed=True)} points"
    n = f"n = {gain.n} seed(s) ({trials} trials)"
    if not gain.has_interval:
        return f"{mean}, {n}, too few seeds for an interval"
    return f"{mean}, 95% CI {format_interval(gain)}, {n}"


def all_finite(values: pd.Series) -> bool:
    """Whether there are values and every one is a finite number."""
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    return len(x) > 0 and bool(np.isfinite(x).all())
