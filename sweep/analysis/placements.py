"""What the trials of one placement did."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from sweep.analysis.convergence import TimeToTarget, time_to_target
from sweep.analysis.estimate import Estimate


@dataclass(frozen=True)
class PlacementSummary:
    """What the trials of one placement did; accuracies are fractions."""

    placement: str
    n_trials: int
    n_finished: int
    failed_share: float  # status not FINISHED, or a non-finite metric or final val loss
    # Each Estimate is over seeds (the mean of each seed's mean over its usable trials, S - 1 df,
    # n = seeds): the trials of one seed share its weights, batches and rows (estimate.py).
    metric: Estimate  # the analysed metric; logit-scale interval
    final_val_accuracy: Estimate  # logit-scale interval, inside [0, 1]
    best_val_accuracy: Estimate
    final_val_loss: Estimate
    time_to_target: TimeToTarget  # over FINISHED trials with curves
    bn_variance_shift: Estimate  # geometric mean of the seeds' geometric means


def summarise(
    trials: pd.DataFrame,
    n_usable: int,
    compared: pd.DataFrame,
    times: pd.DataFrame,
    horizon: float,
    placement: str,
    metric: str,
) -> PlacementSummary:
    """`n_usable` counts the placement's usable trials; `compared` holds the values compared."""
    mine = trials[trials["placement"] == placement]
    ok = compared[compared["placement"] == placement]
    finished_ids = set(mine.loc[mine["status"] == "FINISHED", "run_id"])
    seeds = ok["seed"]
    return PlacementSummary(
        placement=placement,
        n_trials=len(mine),
        n_finished=len(finished_ids),
        failed_share=1 - n_usable / len(mine) if len(mine) else math.nan,
        metric=Estimate.of_accuracy(ok[metric], seeds=seeds),
        final_val_accuracy=Estimate.of_accuracy(ok["final_val_accuracy"], seeds=seeds),
        best_val_accuracy=Estimate.of_accuracy(ok["best_val_accuracy"], seeds=seeds),
        final_val_loss=Estimate.of(ok["final_val_loss"], seeds=seeds),
        time_to_target=time_to_target(times[times.index.isin(finished_ids)], horizon),
        bn_variance_shift=Estimate.of_ratio(ok["bn_variance_shift"], seeds=seeds),
    )
