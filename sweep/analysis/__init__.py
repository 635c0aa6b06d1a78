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
from sweep.analysis.factors import BestDropout, CellMeans
from sweep.analysis.formatting import format_interval, format_number, format_p, metric_label
from sweep.analysis.interactions import CellEffect, Interaction
from sweep.analysis.placements import PlacementSummary
from sweep.analysis.rates import BestRate
from sweep.analysis.recalibration import Recalibration
from sweep.analysis.sequential import AdaptiveSeeds, SequentialCall, adaptive_seeds
from sweep.analysis.trials import has_bn, placement_order, usable_trials
from sweep.analysis.tuning import ChosenBlock, OwnSettings
from sweep.analysis.variance_shift import VarianceShift

__all__ = [
    "AdaptiveSeeds",
    "Analysis",
    "BestDropout",
    "BestRate",
    "CellEffect",
    "CellMeans",
    "ChosenBlock",
    "Comparison",
    "EqualLength",
    "Estimate",
    "Expectation",
    "Interaction",
    "OwnSettings",
    "PlacementSummary",
    "Recalibration",
    "SequentialCall",
    "TimeDifference",
    "TimeToTarget",
    "VarianceShift",
    "adaptive_seeds",
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
