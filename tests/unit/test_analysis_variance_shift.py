"""The variance shift behind dropout -> BN, against Li et al.'s full formula."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sweep.analysis import analyse
from sweep.analysis.variance_shift import li_variance_ratio, variance_shifts

RELU_MEAN_SQ_OVER_VAR = (2 / math.pi) / (1 - 2 / math.pi)  # a half-normal: ReLU of a centred Gaussian


def test_li_formula_is_one_over_keep_rate_for_centred_inputs_and_more_for_relu_outputs():
    assert li_variance_ratio(0.5) == pytest.approx(2.0)
    assert li_variance_ratio(0.1) == pytest.approx(1 / 0.9)
    # 1/p + (1/p - 1) c^2/v: a ReLU's output at rate 0.5 shifts by 3.75, not 2.
    assert li_variance_ratio(0.5, RELU_MEAN_SQ_OVER_VAR) == pytest.approx(2 + RELU_MEAN_SQ_OVER_VAR)
    assert li_variance_ratio(0.0, 5.0) == pytest.approx(1.0)


def trials_with(shift: list[float], expected: list[float] | None = None, rate: float = 0.5) -> pd.DataFrame:
    rows = []
    for seed, value in enumerate(shift):
        for placement, acc in (("after_dropout", 0.88), ("before_activation", 0.9)):
            rows.append(
                {
                    "run_id": f"{placement}-{seed}",
                    "status": "FINISHED",
                    "placement": placement,
                    "dropout": rate,
                    "optimizer": "adam",
                    "seed": seed,
                    "final_val_accuracy": acc + 0.001 * seed,
                    "best_val_accuracy": acc,
                    "final_val_loss": 0.3,
                    "bn_variance_shift": value if placement == "after_dropout" else 1.0,
                    "bn_variance_shift_expected": (
                        expected[seed] if expected and placement == "after_dropout" else math.nan
                    ),
                }
            )
    return pd.DataFrame(rows)


def test_a_relu_sized_shift_is_not_refuted_by_the_simplified_rule():
    analysis = analyse(trials_with([3.6, 3.8, 3.7, 3.9]))
    (row,) = [s for s in analysis.variance_shift if s.placement == "after_dropout"]
    assert row.expected_is_lower_bound and row.expected == pytest.approx(2.0)
    assert "at least 2.00 = 1/(1\u2212rate)" in analysis.expectations[1].detail
    assert "BN variance ratio: at dropout 0.5, 3.75" in analysis.expectations[1].detail
    assert "(confirmed)" in analysis.expectations[1].detail


def test_measured_prediction_is_checked_within_25_percent():
    close = analyse(trials_with([3.6, 3.8, 3.7, 3.9], expected=[3.7, 3.75, 3.8, 3.7]))
    (row,) = [s for s in close.variance_shift if s.placement == "after_dropout"]
    assert not row.expected_is_lower_bound and row.relative is not None
    assert row.relative.mean == pytest.approx(1.0, abs=0.02)
    assert "from the measured means and variances (confirmed)" in close.expectations[1].detail
    far = analyse(trials_with([2.0, 2.1, 1.9, 2.0], expected=[3.7, 3.75, 3.8, 3.7]))
    assert "from the measured means and variances; its interval excludes the prediction" in (
        far.expectations[1].detail
    )
    assert "below it (refuted)" in far.expectations[1].detail


def test_no_shift_where_dropout_feeds_bn_refutes_the_mechanism():
    analysis = analyse(trials_with([1.0, 1.05, 0.98, 1.02]))
    assert "(refuted)" in analysis.expectations[1].detail
    assert analysis.expectations[1].status == "refuted"


def test_placements_where_dropout_does_not_feed_bn_have_no_prediction():
    rows = variance_shifts(trials_with([2.0, 2.0, 2.0]).assign(dropout=0.5), ["before_activation"])
    assert rows[0].expected is None and rows[0].relative is None


def test_the_ratio_is_averaged_within_seeds_before_its_interval():
    # Two trials a seed: the seed's rows set the ratio, the two trials agree on it.
    again = trials_with([2.0, 2.6, 2.2]).assign(optimizer="sgd", run_id=lambda d: d["run_id"] + "-sgd")
    trials = pd.concat([trials_with([2.0, 2.6, 2.2]), again])
    (row,) = [s for s in analyse(trials).variance_shift if s.placement == "after_dropout"]
    assert row.ratio.n == 3  # seeds, not the 6 trials
    logs = np.log([2.0, 2.6, 2.2])
    half = 4.303 * logs.std(ddof=1) / math.sqrt(3)
    assert row.ratio.ci_high == pytest.approx(math.exp(logs.mean() + half), rel=1e-3)


def test_a_ratio_whose_interval_excludes_the_prediction_is_not_confirmed():
    """Inside the +-25% called "about", but 4-10% short of the prediction: say so, do not confirm."""
    measured = [3.40, 3.45, 3.50, 3.42]
    analysis = analyse(trials_with(measured, expected=[3.75] * 4))
    (row,) = [s for s in analysis.variance_shift if s.placement == "after_dropout"]
    assert row.relative is not None and row.relative.ci_low > 0.8 and row.relative.ci_high < 1
    detail = analysis.expectations[1].detail
    assert "its interval excludes the prediction, lying" in detail and "% below it (cannot tell)" in detail
    assert "(confirmed)" not in detail and analysis.expectations[1].status != "confirmed"
