"""The rule that turns a paired interval into an outcome, its intervals, and its error rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import TTestPower

from sweep.analysis import Estimate, classify
from sweep.analysis.comparisons import comparison_pairs, paired_t_p, pairs_for_power, simultaneous


def interval(low: float, high: float, n: int = 10) -> Estimate:
    return Estimate(n, (low + high) / 2, 1.0, low, high)


@pytest.mark.parametrize(
    ("low", "high", "outcome"),
    [
        (-0.5, 0.4, "equivalent"),  # inside the margin, across 0
        (-0.9, -0.1, "equivalent"),  # excludes 0 but inside the margin: real, yet smaller than it
        (0.2, 0.8, "equivalent"),
        (-1.5, -0.1, "worse"),  # excludes 0, reaches past the margin
        (-3.0, -2.0, "worse"),
        (0.3, 1.2, "better"),
        (-1.2, 0.5, "cannot tell"),  # includes 0 and reaches past the margin
        (-0.5, 1.0, "cannot tell"),  # touching the margin is not inside it
    ],
)
def test_classify_reads_the_outcome_off_the_interval_and_the_margin(low, high, outcome):
    assert classify(interval(low, high), margin=1.0) == outcome


def test_classify_cannot_tell_without_an_interval_or_with_too_few_pairs():
    assert classify(Estimate.of([0.1, 0.2]), 1.0) == "cannot tell"
    assert classify(interval(-0.1, 0.1, n=2), 1.0) == "cannot tell"
    assert classify(Estimate.of([0.0, 0.0, 0.0]), 1.0) == "cannot tell"  # no spread: no real interval


def test_simultaneous_intervals_use_the_bonferroni_level_of_the_testable_family():
    rng = np.random.default_rng(3)
    tested = simultaneous([rng.normal(0, 1, 12), rng.normal(1, 1, 12), rng.normal(0, 1, 2)])
    assert [t.family for t in tested] == [2, 2, 2]  # two pairs cannot be tested
    assert tested[0].diff.level == pytest.approx(1 - 0.025 / 2)  # the overall comparisons' share
    assert math.isnan(tested[2].p_value) and not tested[2].diff.has_interval
    for t in tested[:2]:
        assert t.p_adjusted == pytest.approx(min(1.0, 2 * t.p_value))


def test_paired_t_p_is_scipys_one_sample_t_test():
    rng = np.random.default_rng(6)
    for n in (3, 7, 40):
        x = rng.normal(0.3, 1, n)
        assert paired_t_p(x) == pytest.approx(stats.ttest_1samp(x, 0.0).pvalue, rel=1e-9)


def test_adjusted_p_below_alpha_exactly_when_the_interval_excludes_zero():
    rng = np.random.default_rng(4)
    for _ in range(300):
        k = int(rng.integers(1, 5))
        family = [rng.normal(rng.normal(0, 0.6), 1, int(rng.integers(3, 15))) for _ in range(k)]
        for t in simultaneous(family):
            excludes = t.diff.ci_low > 0 or t.diff.ci_high < 0
            assert (t.p_adjusted < 0.025) == excludes


def test_null_sweeps_call_a_placement_worse_at_most_5_percent_of_the_time():
    """2000 sweeps where placement has no effect: 3 placements against none, 20 pairs each."""
    rng = np.random.default_rng(2024)
    sims, pairs = 2000, 20
    shared = rng.normal(0, 2.0, (sims, 1, pairs))  # what the pairing removes
    acc = shared + rng.normal(0, 2.0, (sims, 4, pairs))  # points; index 3 is none
    worse = directional = 0
    for sweep in acc:
        outcomes = [classify(t.diff, 1.0) for t in simultaneous([sweep[i] - sweep[3] for i in range(3)])]
        worse += "worse" in outcomes
        directional += "worse" in outcomes or "better" in outcomes
    assert worse / sims <= 0.05
    assert directional / sims <= 0.05 + 0.01  # the family-wise rate, within Monte Carlo error
    assert worse > 0  # the test has power to fail: the rule is not simply never "worse"


def test_a_planted_difference_is_found_nearly_always():
    rng = np.random.default_rng(5)
    found = 0
    for _ in range(200):
        diffs = rng.normal(-2.0, 1.0, 20)
        found += classify(simultaneous([diffs, rng.normal(0, 1.0, 20)])[0].diff, 1.0) == "worse"
    assert found / 200 > 0.95


def test_pairs_for_power_is_the_smallest_n_with_80_percent_power():
    for effect in (0.3, 1.0, 1.306, 2.5):
        n = pairs_for_power(effect, 0.05 / 3)
        assert n is not None
        power = TTestPower().power(effect_size=effect, nobs=np.array([n - 1, n]), alpha=0.05 / 3)
        assert power[1] >= 0.8 and (n == 2 or power[0] < 0.8)
    assert pairs_for_power(1e-4, 0.05, most=1000) is None


def test_comparison_pairs_against_a_reference_or_every_pair():
    placements = ["before_activation", "after_activation", "none"]
    assert comparison_pairs(placements, "none") == [
        ("before_activation", "none"),
        ("after_activation", "none"),
    ]
    assert comparison_pairs(placements, "all") == [
        ("after_activation", "before_activation"),
        ("none", "before_activation"),
        ("none", "after_activation"),
    ]
    assert comparison_pairs(["before_activation"], "none") == []
