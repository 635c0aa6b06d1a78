"""Statistics over the trial table: per-placement summaries, paired comparisons and a verdict.

Pure: numpy, pandas, scipy and statsmodels only. Accuracies stay fractions in summaries; differences between
placements are percentage points. A trial is *usable* when it FINISHED with a finite metric and
a finite final validation loss; everything else counts as failed or diverged.
"""

from sweep.analysis.analysis import Analysis, analyse
from sweep.analysis.comparisons import Comparison, classify
from sweep.analysis.convergence import TimeDifference, TimeToTarget
from sweep.analysis.equal_length import EqualLength
from sweep.analysis.estimate import Estimate
from sweep.analysis.expectations import Expectation
from sweep.analysis.factors import BestDropout, Interaction
from sweep.analysis.formatting import format_interval, format_number, format_p, metric_label
from sweep.analysis.placements import PlacementSummary
from sweep.analysis.trials import has_bn, placement_order, usable_trials
from sweep.analysis.variance_shift import VarianceShift

__all__ = [
    "Analysis",
    "BestDropout",
    "Comparison",
    "EqualLength",
    "Estimate",
    "Expectation",
    "Interaction",
    "PlacementSummary",
    "TimeDifference",
    "TimeToTarget",
    "VarianceShift",
    "analyse",
    "classify",
    "format_interval",
    "format_number",
    "format_p",
    "has_bn",
    "metric_label",
    "placement_order",
    "usable_trials",
]
