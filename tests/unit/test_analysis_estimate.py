"""Means and their intervals: differences, accuracies kept inside [0, 1], ratios."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sweep.analysis import Estimate


def test_t_interval_matches_scipy():
    x = np.array([0.2, -0.4, 1.1, 0.6, 0.3])
    est = Estimate.of(x)
    low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert (est.ci_low, est.ci_high) == (pytest.approx(low), pytest.approx(high))
    wider = Estimate.of(x, level=1 - 0.05 / 3)
    assert wider.ci_low < est.ci_low and wider.ci_high > est.ci_high


@pytest.mark.parametrize("values", [[0.5, 0.99], [0.7], []])
def test_fewer_than_three_values_give_no_interval(values):
    est = Estimate.of_accuracy(values)
    assert not est.has_interval
    assert est.n == len(values)


def test_accuracy_intervals_stay_inside_0_and_1_where_a_t_interval_would_not():
    for values in ([0.55, 0.99, 0.999], [0.98, 1.0, 1.0, 0.97], [0.01, 0.0, 0.2], [0.3, 0.95, 0.6]):
        plain = Estimate.of(values)
        est = Estimate.of_accuracy(values)
        assert 0 <= est.ci_low <= est.mean <= est.ci_high <= 1, values
        assert est.mean == pytest.approx(plain.mean)
    assert Estimate.of([0.55, 0.99, 0.999]).ci_high > 1  # what the logit scale prevents


def test_accuracy_interval_is_close_to_the_t_interval_away_from_the_edges():
    rng = np.random.default_rng(0)
    x = rng.normal(0.6, 0.01, 30)
    est, plain = Estimate.of_accuracy(x), Estimate.of(x)
    assert est.ci_low == pytest.approx(plain.ci_low, abs=1e-3)
    assert est.ci_high == pytest.approx(plain.ci_high, abs=1e-3)


def test_identical_accuracies_give_a_point_interval():
    est = Estimate.of_accuracy([1.0, 1.0, 1.0])
    assert (est.ci_low, est.mean, est.ci_high) == (1.0, 1.0, 1.0)


def test_ratio_estimate_is_a_geometric_mean_one_outlier_barely_moves():
    ratios = [2.0, 2.1, 1.9, 2.0, 60.0]  # one trial inflated by a near-zero test variance
    est = Estimate.of_ratio(ratios)
    assert est.mean == pytest.approx(math.exp(np.mean(np.log(ratios))))
    assert est.mean < 4 < np.mean(ratios)
    assert est.ci_low > 0 and est.has_interval
    assert Estimate.of_ratio([2.0, 0.0, math.nan]).n == 1  # non-positive and missing dropped


# --- the seed as the unit -------------------------------------------------------------------------


def seeded_values() -> tuple[np.ndarray, np.ndarray]:
    """3 seeds x 8 cells: each seed moves all its values together, the cells barely differ."""
    rng = np.random.default_rng(3)
    seeds = np.repeat([0, 1, 2], 8)
    return np.array([4.0, -4.0, 0.0])[seeds] + 2.0 + rng.normal(0, 0.1, len(seeds)), seeds


def test_given_seeds_the_interval_is_a_t_interval_over_the_seed_means():
    values, seeds = seeded_values()
    by_seed = Estimate.of(values, seeds=seeds)
    means = np.array([values[seeds == s].mean() for s in range(3)])
    assert by_seed.n == 3 and by_seed.std == pytest.approx(means.std(ddof=1))
    low, high = stats.t.interval(0.95, 2, loc=means.mean(), scale=stats.sem(means))
    assert (by_seed.ci_low, by_seed.ci_high) == (pytest.approx(low), pytest.approx(high))
    by_trial = Estimate.of(values)
    # 24 trials as independent: narrow and excluding 0; 3 seeds: several times wider, holding 0.
    assert by_trial.n == 24 and by_trial.ci_low > 0
    assert by_seed.ci_width > 5 * by_trial.ci_width and by_seed.ci_low < 0 < by_seed.ci_high


def test_seed_means_skip_missing_values_and_need_one_seed_per_value():
    assert Estimate.of([1.0, math.nan, 3.0, 5.0, 7.0], seeds=[0, 0, 0, 1, 1]).n == 2
    with pytest.raises(ValueError, match="one seed per value"):
        Estimate.of([1.0, 2.0], seeds=[0])


def test_accuracies_and_ratios_are_also_averaged_within_seeds_first():
    values, seeds = seeded_values()
    acc = Estimate.of_accuracy(0.8 + values / 100, seeds=seeds)
    assert acc.n == 3 and acc.ci_width > 5 * Estimate.of_accuracy(0.8 + values / 100).ci_width
    ratios = np.exp(values / 10)
    ratio = Estimate.of_ratio(ratios, seeds=seeds)
    log_means = [np.log(ratios[seeds == s]).mean() for s in range(3)]
    assert ratio.n == 3 and ratio.mean == pytest.approx(math.exp(np.mean(log_means)))
    assert ratio.ci_width > 5 * Estimate.of_ratio(ratios).ci_width
