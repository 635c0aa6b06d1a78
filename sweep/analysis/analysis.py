"""`analyse`: the trial table in, everything the report says out."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sweep.analysis.comparisons import Comparison, compare_all, fallback_sd
from sweep.analysis.convergence import DEFAULT_TARGET_SHARE, epochs_to_target
from sweep.analysis.expectations import (
    Expectation,
    expect_after_dropout,
    expect_before_vs_after,
    expect_faster_with_bn,
    expect_less_dropout_with_bn,
)
from sweep.analysis.factors import BestDropout, Interaction, best_dropout, interaction
from sweep.analysis.formatting import metric_label
from sweep.analysis.placements import PlacementSummary, summarise
from sweep.analysis.serialisation import estimate_metrics, plain
from sweep.analysis.trials import clean_curves, clean_trials, placement_order, usable_mask
from sweep.analysis.variance_shift import VarianceShift, variance_shifts
from sweep.analysis.verdict import verdict_sentences


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything the report says about one sweep."""

    metric: str
    target_accuracy: float  # NaN when no trial gives a basis for it
    target_is_default: bool
    n_trials: int
    n_seeds: int
    best_placement: str | None
    placements: tuple[PlacementSummary, ...]
    variance_shift: tuple[VarianceShift, ...]
    comparisons: tuple[Comparison, ...]
    interactions: tuple[Interaction, ...]
    best_dropout: tuple[BestDropout, ...]
    verdict: tuple[str, ...]
    expectations: tuple[Expectation, ...]

    def placement(self, name: str) -> PlacementSummary:
        """The summary of placement `name`."""
        for summary in self.placements:
            if summary.placement == name:
                return summary
        have = ", ".join(s.placement for s in self.placements)
        raise KeyError(f"placement: no trials for {name!r} (have {have})")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data; NaN and infinities become None."""
        data: dict[str, Any] = plain(self)
        data["metric_label"] = metric_label(self.metric)
        return data

    def summary_metrics(self) -> dict[str, float]:
        """Flat finite numbers for a tracking server, keyed like `placement.none.failed_share`."""
        out: dict[str, float] = {"target_accuracy": self.target_accuracy}
        for s in self.placements:
            pre = f"placement.{s.placement}."
            for name, est in (
                ("val_accuracy", s.final_val_accuracy),
                ("best_val_accuracy", s.best_val_accuracy),
                ("val_loss", s.final_val_loss),
                ("epochs_to_target", s.epochs_to_target),
            ):
                out |= estimate_metrics(pre + name, est)
            out[pre + "bn_variance_shift_mean"] = s.bn_variance_shift.mean
            out[pre + "reached_share"] = s.reached_share
            out[pre + "failed_share"] = s.failed_share
        for c in self.comparisons:
            pre = f"comparison.{c.placement}_vs_{c.reference}."
            out[pre + "diff_points"] = c.diff.mean
            out[pre + "diff_ci_low"] = c.diff.ci_low
            out[pre + "diff_ci_high"] = c.diff.ci_high
            out[pre + "p_holm"] = c.p_holm
            out[pre + "n_pairs"] = float(c.n_pairs)
        return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(v)}


def analyse(
    trials: pd.DataFrame,
    curves: pd.DataFrame | None = None,
    target_accuracy: float | None = None,
    metric: str = "final_val_accuracy",
) -> Analysis:
    """Summarise, compare and judge the placements of one sweep.

    `target_accuracy` (a fraction) defaults to 95% of the best placement's mean final
    validation accuracy, rounded down to a whole percent, so that most trials can reach it.
    """
    if target_accuracy is not None and not 0 < target_accuracy <= 1:
        raise ValueError(f"target_accuracy: must be a fraction > 0 and <= 1 (got {target_accuracy})")
    trials = clean_trials(trials, metric)
    curves = clean_curves(curves)
    usable = trials[usable_mask(trials, metric)]
    order = placement_order(trials["placement"].unique())

    target_is_default = target_accuracy is None
    if target_accuracy is None:
        means = usable.groupby("placement")["final_val_accuracy"].mean()
        best_mean = float(means.max()) if len(means) else math.nan
        target_accuracy = (
            math.floor(DEFAULT_TARGET_SHARE * best_mean * 100) / 100 if math.isfinite(best_mean) else math.nan
        )
    finished = trials[trials["status"] == "FINISHED"]
    epochs = epochs_to_target(curves, finished["run_id"], target_accuracy)

    summaries = tuple(summarise(trials, usable, epochs, p, metric) for p in order)
    usable_means = {s.placement: s.metric.mean for s in summaries if s.metric.n}
    best = max(usable_means, key=lambda p: usable_means[p]) if usable_means else None
    cells = max(1, len(trials[["dropout", "optimizer"]].drop_duplicates()))
    spread_sd = fallback_sd(usable, metric)
    comparisons = compare_all(usable, best, order, metric, cells, spread_sd)
    shifts = variance_shifts(usable, order)
    interactions = tuple(i for f in ("dropout", "optimizer") if (i := interaction(usable, f, metric, order)))
    best_dropouts = best_dropout(usable, metric)
    n_seeds = int(trials["seed"].nunique())

    expectations = (
        expect_before_vs_after(usable, metric),
        expect_after_dropout(usable, metric, shifts),
        expect_less_dropout_with_bn(usable, metric, best_dropouts),
        expect_faster_with_bn(finished, epochs, target_accuracy),
    )
    verdict = verdict_sentences(
        trials,
        summaries,
        comparisons,
        shifts,
        interactions,
        metric,
        best,
        target_accuracy,
        target_is_default,
        cells,
        n_seeds,
    )
    return Analysis(
        metric=metric,
        target_accuracy=float(target_accuracy),
        target_is_default=target_is_default,
        n_trials=len(trials),
        n_seeds=n_seeds,
        best_placement=best,
        placements=summaries,
        variance_shift=shifts,
        comparisons=comparisons,
        interactions=interactions,
        best_dropout=best_dropouts,
        verdict=tuple(verdict),
        expectations=expectations,
    )
