"""What the trials of one placement did."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from sweep.analysis.estimate import Estimate


@dataclass(frozen=True)
class PlacementSummary:
    """What the trials of one placement did; accuracies are fractions."""

    placement: str
    n_trials: int
    n_finished: int
    failed_share: float  # status not FINISHED, or a non-finite metric or final val loss
    metric: Estimate  # the analysed metric, over usable trials
    final_val_accuracy: Estimate
    best_val_accuracy: Estimate
    final_val_loss: Estimate
    epochs_to_target: Estimate  # over FINISHED trials that reached the target
    n_with_curves: int  # FINISHED trials with per-epoch data
    n_reached: int
    bn_variance_shift: Estimate

    @property
    def reached_share(self) -> float:
        """Share of FINISHED trials with curves that reached the target accuracy."""
        return self.n_reached / self.n_with_curves if self.n_with_curves else math.nan


def summarise(
    trials: pd.DataFrame, usable: pd.DataFrame, epochs: pd.DataFrame, placement: str, metric: str
) -> PlacementSummary:
    mine = trials[trials["placement"] == placement]
    ok = usable[usable["placement"] == placement]
    finished_ids = mine.loc[mine["status"] == "FINISHED", "run_id"]
    with_curves = epochs.loc[epochs.index.isin(set(finished_ids)), "reached"]
    return PlacementSummary(
        placement=placement,
        n_trials=len(mine),
        n_finished=int((mine["status"] == "FINISHED").sum()),
        failed_share=1 - len(ok) / len(mine) if len(mine) else math.nan,
        metric=Estimate.of(ok[metric]),
        final_val_accuracy=Estimate.of(ok["final_val_accuracy"]),
        best_val_accuracy=Estimate.of(ok["best_val_accuracy"]),
        final_val_loss=Estimate.of(ok["final_val_loss"]),
        epochs_to_target=Estimate.of(with_curves),
        n_with_curves=len(with_curves),
        n_reached=int(with_curves.notna().sum()),
        bn_variance_shift=Estimate.of(ok["bn_variance_shift"]),
    )
