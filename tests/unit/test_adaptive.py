"""Adaptive seeds: the looks, their error rates, and the false-"worse" rate on null sweeps."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from sweep.adaptive import (
    Call,
    judge,
    look_levels,
    paired_differences,
    replay,
    schedule,
    sequential,
    trials_saved,
    verdict_metric,
)
from sweep.analysis import Estimate, classify
from sweep.spec import SpecError, parse_spec

PLACEMENTS = ["before_activation", "none"]


def spec(dataset: dict | None = None, strategy: dict | None = None, **search: object):
    return parse_spec(
        {
            "name": "adaptive",
            "dataset": dataset or {},
            "search": {"placement": PLACEMENTS, "dropout": [0.0], "seeds": {"min": 3, "max": 10}, **search},
            "strategy": strategy or {},
            "analysis": {"equivalence_margin": 1.0},
        }
    )


def table(accuracy: dict[str, np.ndarray], seeds: int) -> pd.DataFrame:
    """A trial table: one FINISHED trial per placement and seed, with that final accuracy."""
    rows = [
        {
            "placement": p,
            "dropout": 0.0,
            "optimizer": "adam",
            "seed": s,
            "status": "FINISHED",
            "final_val_accuracy": float(accuracy[p][s]),
        }
        for p, s in itertools.product(accuracy, range(seeds))
    ]
    return pd.DataFrame(rows)


def test_the_looks_spend_exactly_alpha() -> None:
    looks = schedule(3, 10, 2)
    assert looks == [3, 5, 7, 9, 10]
    levels = look_levels(looks, 0.05)
    assert all(level > 0 for level in levels)
    assert sum(levels) == pytest.approx(0.05)


def test_a_clear_difference_is_decided_at_the_first_look() -> None:
    rng = np.random.default_rng(1)
    base = 0.8 + rng.normal(0, 0.01, 10)
    worse = base - 0.05 + rng.normal(0, 0.002, 10)
    progress = replay(table({"before_activation": worse, "none": base}, 3), spec())
    assert progress.decided
    [call] = progress.calls
    assert call.outcome == "worse" and call.look == 1 and call.seeds == 3
    assert trials_saved(spec(), ran=6) == 20 - 6


def test_an_undecided_comparison_asks_for_one_more_seed_of_its_placements() -> None:
    rng = np.random.default_rng(2)
    noisy = {p: 0.8 + rng.normal(0, 0.03, 10) for p in PLACEMENTS}
    progress = replay(table(noisy, 3), spec())
    assert not progress.decided
    assert progress.next_round is not None
    assert progress.next_round.placements == tuple(sorted(PLACEMENTS))
    assert progress.next_round.seeds == range(3, 4)
    [call] = progress.calls
    assert call.outcome == "cannot tell" and call.seeds == 3


def test_equivalent_placements_are_called_equivalent_with_enough_seeds() -> None:
    rng = np.random.default_rng(3)
    base = 0.8 + rng.normal(0, 0.02, 10)
    same = {"before_activation": base + rng.normal(0, 0.001, 10), "none": base}
    progress = replay(table(same, 10), spec())
    assert progress.decided
    [call] = progress.calls
    assert call.outcome == "equivalent" and call.low > -1 and call.high < 1


def test_false_worse_rate_on_2000_null_sweeps_stays_under_alpha() -> None:
    """No real difference, three comparisons, 8 looks (3..10 seeds): any "worse" call in a
    sweep counts against it; at most 5% of the sweeps may have one (the family-wise rate)."""
    rng = np.random.default_rng(0)
    looks = schedule(3, 10, 1)
    seeds = np.arange(10)
    pairs = [("a", "ref"), ("b", "ref"), ("c", "ref")]
    wrong = decided = 0
    for _ in range(2000):
        # per-seed differences: noise around 0 (a 1.4-point spread, as two 1-point trial noises)
        progress = sequential({pair: (seeds, rng.normal(0, 1.4, 10)) for pair in pairs}, looks, 0.05, 1.0)
        wrong += any(c.outcome in ("worse", "better") for c in progress.calls)
        decided += sum(c.decided for c in progress.calls)
    assert wrong / 2000 <= 0.05
    assert decided > 0  # the procedure does decide (equivalent), it is not vacuous


def test_the_real_procedure_on_a_null_trial_table_agrees_with_the_fast_one() -> None:
    rng = np.random.default_rng(5)
    base = 0.8 + rng.normal(0, 0.02, 10)
    trials = table({p: base + rng.normal(0, 0.01, 10) for p in PLACEMENTS}, 10)
    slow = replay(trials, spec())
    seeds, diffs = paired_differences(trials, "before_activation", "none", "final_val_accuracy")
    fast = sequential({("before_activation", "none"): (seeds, diffs)}, schedule(3, 10, 1), 0.05, 1.0)
    assert slow.calls == fast.calls


def test_a_look_uses_the_reports_rule_in_the_reports_order() -> None:
    """The issue's example: inside the margin and above 0 is equivalent, as the report says."""
    diffs = np.array([0.3, 0.5, 0.4, 0.6])
    outcome, mean, low, high = judge(diffs, 0.05, 1.0)
    assert outcome == classify(Estimate.of(diffs, 0.95), 1.0) == "equivalent"
    assert 0 < low < mean < high < 1


def test_a_look_never_decides_from_fewer_than_3_seeds_or_no_spread() -> None:
    assert judge(np.array([0.5, 0.5]), 0.05, 1.0)[0] == "cannot tell"
    assert judge(np.array([-5.0, -4.0]), 0.05, 1.0)[0] == "cannot tell"
    assert judge(np.array([-5.0, -5.0, -5.0]), 0.05, 1.0)[0] == "cannot tell"
    assert judge(np.array([-5.0, -5.1, -4.9]), 0.05, 1.0)[0] == "worse"


def test_looks_judge_the_verdicts_accuracy_whatever_strategy_metric_is() -> None:
    assert verdict_metric(spec()) == "final_val_accuracy"
    assert verdict_metric(spec(dataset={"test_split": 0.2})) == "final_test_accuracy"
    rng = np.random.default_rng(4)
    base = 0.8 + rng.normal(0, 0.01, 10)
    better = base + 0.05 + rng.normal(0, 0.002, 10)
    trials = table({"before_activation": better, "none": base}, 3)
    # lower loss and 5 points more accuracy: better, not judged on the loss as if it were accuracy
    trials["final_val_loss"] = np.where(trials["placement"] == "none", 0.6, 0.4)
    by_loss = spec(strategy={"metric": "val_loss", "mode": "min"})
    [call] = replay(trials, by_loss).calls
    assert call.outcome == "better" and call.difference > 4


def test_a_seed_is_one_unit_however_many_cells_it_has() -> None:
    """Two cells a seed: 3 seeds give 6 pairs but 3 units, and the call says so."""
    rng = np.random.default_rng(8)
    seeds = np.repeat(np.arange(3), 2)
    diffs = rng.normal(-4, 0.3, 6)
    [call] = sequential({("b", "a"): (seeds, diffs)}, [3], 0.05, 1.0).calls
    assert (call.pairs, call.seeds_with_pairs) == (6, 3)
    means = diffs.reshape(3, 2).mean(axis=1)
    assert call.difference == pytest.approx(means.mean())
    assert call.high - call.low == pytest.approx(Estimate.of(means, call.level).ci_width)


def test_a_call_is_recorded_as_json() -> None:
    call = Call("b", "a", "cannot tell", 1, 3, 2, 0.5, float("nan"), float("nan"), 0.99, 2)
    assert '"low": null' in call.to_json() and '"outcome": "cannot tell"' in call.to_json()


@pytest.mark.parametrize(
    ("seeds", "strategy", "got"),
    [
        ({"min": 1, "max": 2}, {}, "max=2, scheduler fifo"),
        ({"min": 3, "max": 6}, {"scheduler": "asha"}, "asha"),
    ],
)
def test_an_adaptive_setup_that_cannot_be_judged_is_refused_where_it_is(seeds, strategy, got) -> None:
    with pytest.raises(SpecError) as caught:
        spec(strategy=strategy, seeds=seeds)
    (error,) = [e for e in caught.value.errors if e.startswith("search.seeds: adaptive looks")]
    assert got in error
