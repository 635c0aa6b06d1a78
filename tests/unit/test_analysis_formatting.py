"""Numbers and intervals as the report writes them."""

from __future__ import annotations

from sweep.analysis import Estimate, format_interval
from sweep.analysis.formatting import format_nonzero


def interval(low: float, high: float) -> Estimate:
    return Estimate(n=5, mean=(low + high) / 2, std=1.0, ci_low=low, ci_high=high)


def test_an_interval_that_excludes_0_never_reads_as_touching_it():
    # "CI 0.0 to 4.6" beside "better" reads as a contradiction: print the digits that show the sign.
    assert format_interval(interval(0.03, 4.6)) == "0.03 to 4.6"
    assert format_interval(interval(-4.6, -0.004)) == "\u22124.6 to \u22120.004"


def test_interval_ends_away_from_0_keep_the_digits_asked_for():
    assert format_interval(interval(0.26, 4.64)) == "0.3 to 4.6"
    assert format_interval(interval(-1.04, 0.0)) == "\u22121.0 to 0.0"
    assert format_interval(interval(0.5, 0.9), scale=100) == "50.0 to 90.0"


def test_a_bound_that_is_not_0_never_prints_as_0():
    assert format_nonzero(0.04) == "0.04" and format_nonzero(2.26) == "2.3"
