"""Statistics over the trial table: per-placement summaries, paired comparisons and a verdict.

Pure: numpy, pandas and scipy only. Accuracies stay fractions in summaries; differences between
placements are percentage points. A trial is *usable* when it FINISHED with a finite metric and
a finite final validation loss; everything else counts as failed or diverged.
"""

from sweep.analysis.analysis import Analysis, analyse
from sweep.analysis.comparisons import Comparison
from sweep.analysis.estimate import Estimate
from sweep.analysis.expectations import Expectation
from sweep.analysis.factors import BestDropout, Interaction
from sweep.analysis.formatting import format_number, format_p, metric_label
from sweep.analysis.placements import PlacementSummary
from sweep.analysis.trials import has_bn, placement_order, usable_trials
from sweep.analysis.variance_shift import VarianceShift

__all__ = [
    "Analysis",
    "BestDropout",
    "Comparison",
    "Estimate",
    "Expectation",
    "Interaction",
    "PlacementSummary",
    "VarianceShift",
    "analyse",
    "format_number",
    "format_p",
    "has_bn",
    "metric_label",
    "placement_order",
    "usable_trials",
]
