"""Epochs to target: Kaplan-Meier with censoring, restricted means, and the BN-vs-none bound."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sweep.analysis.convergence import bn_vs_none, describe_difference, first_epochs, time_to_target


def curves_of(runs: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"run_id": r, "epoch": e, "val_accuracy": v} for r, vs in runs.items() for e, v in enumerate(vs, 1)]
    )


def test_first_epochs_marks_runs_that_never_reach_the_target_as_censored_at_their_last():
    curves = curves_of({"a": [0.5, 0.9, 0.95], "b": [0.5, 0.6, 0.7, 0.8]})
    times = first_epochs(curves, pd.Series(["a", "b"]), 0.9)
    assert times.loc["a"].tolist() == [2, True]
    assert times.loc["b"].tolist() == [4, False]


def test_restricted_mean_is_the_area_under_the_kaplan_meier_curve():
    times = pd.DataFrame({"epochs": [2.0, 3.0, 3.0, 6.0, 10.0], "reached": [True, True, False, True, False]})
    t = time_to_target(times, horizon=10)
    # By hand: S = 4/5 from 2, 4/5 * 3/4 = 3/5 from 3 (one censored there), 3/5 * 1/2 = 3/10 from 6.
    assert t.restricted_mean == pytest.approx(2 * 1 + 1 * 0.8 + 3 * 0.6 + 4 * 0.3)
    assert t.median == 6 and (t.n, t.n_reached) == (5, 3)


def test_with_censoring_only_at_the_horizon_the_restricted_mean_counts_the_horizon():
    epochs = np.array([3.0, 4.0, 10.0, 10.0, 10.0])
    t = time_to_target(pd.DataFrame({"epochs": epochs, "reached": [True, True, False, False, False]}), 10)
    assert t.restricted_mean == pytest.approx(epochs.mean())
    assert math.isnan(t.median)  # most never got there: the median is not reached


def test_nobody_reaching_the_target_gives_the_whole_horizon_and_no_median():
    t = time_to_target(pd.DataFrame({"epochs": [10.0, 10.0], "reached": [False, False]}), 10)
    assert t.restricted_mean == 10 and math.isnan(t.median) and t.reached_share == 0


def sweep_where_none_never_gets_there(seeds: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, runs = [], {}
    for seed in range(seeds):
        for placement, reach in (("before_activation", 3 + seed % 2), ("none", None)):
            run = f"{placement}-{seed}"
            rows.append(
                {
                    "run_id": run,
                    "placement": placement,
                    "dropout": 0.1,
                    "optimizer": "sgd",
                    "learning_rate": 0.1,
                    "seed": seed,
                }
            )
            runs[run] = [0.95 if reach is not None and e >= reach else 0.5 for e in range(1, 11)]
    return pd.DataFrame(rows), curves_of(runs)


def test_one_side_never_reaching_the_target_gives_a_bound_not_a_narrow_interval():
    finished, curves = sweep_where_none_never_gets_there()
    times = first_epochs(curves, finished["run_id"], 0.9)
    td = bn_vs_none(finished, times, horizon=10)
    assert td is not None
    assert (td.none_censored, td.bn_censored) == (5, 0) and td.is_bound
    assert td.diff.mean == pytest.approx(np.mean([3, 4, 3, 4, 3]) - 10)
    text = describe_difference(td, 0.9)
    assert text.startswith(
        f"BN placements reach 90% validation accuracy at least {-td.diff.ci_high:.1f} epochs"
    )
    assert "so the true gap is larger" in text


def test_a_gap_with_no_censoring_is_reported_as_a_plain_difference():
    finished, curves = sweep_where_none_never_gets_there()
    curves.loc[curves["run_id"].str.startswith("none") & (curves["epoch"] >= 8), "val_accuracy"] = 0.95
    times = first_epochs(curves, finished["run_id"], 0.9)
    td = bn_vs_none(finished, times, horizon=10)
    assert td is not None and not td.is_bound
    assert td.diff.mean == pytest.approx(np.mean([3, 4, 3, 4, 3]) - 8)
    assert "at least" not in describe_difference(td, 0.9)


def test_the_bn_vs_none_gap_is_judged_over_seeds_not_pairs():
    """3 seeds x 8 cells: a seed that is slow is slow for BN in every cell, so 24 pairs are 3 units."""
    rows, runs = [], {}
    for seed, bn_epoch in enumerate((2, 6, 4)):  # BN's epoch to target moves with the seed
        for cell in range(8):
            for placement, reach in (("before_activation", bn_epoch), ("none", 5)):
                run = f"{placement}-{cell}-{seed}"
                cell_keys = {"dropout": 0.1 * cell, "optimizer": "sgd", "learning_rate": 0.1, "seed": seed}
                rows.append({"run_id": run, "placement": placement, **cell_keys})
                runs[run] = [0.95 if e >= reach else 0.5 for e in range(1, 11)]
    finished = pd.DataFrame(rows)
    times = first_epochs(curves_of(runs), finished["run_id"], 0.9)
    td = bn_vs_none(finished, times, horizon=10)
    assert td is not None and td.pairs == 24 and td.diff.n == 3
    assert td.diff.mean == pytest.approx(-1.0)
    # Per seed: -3, +1, -1: SD 2 over 3 seeds, t(2) -> about -6 to +4; by pairs it would be narrow.
    assert td.diff.ci_low < -5 and td.diff.ci_high > 3
    text = describe_difference(td, 0.9)
    assert "n = 3 seed(s) (24 pairs)" in text and text.startswith("The sweep cannot tell")
