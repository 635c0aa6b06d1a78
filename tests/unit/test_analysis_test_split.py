"""The verdict on the held-out test split, and after_dropout's BN statistics recalibrated."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from trial_tables import make_trials, seed_effect_trials

from sweep.analysis import analyse
from sweep.analysis.recalibration import RECALIBRATED, describe
from sweep.report import render_markdown


def with_test(trials: pd.DataFrame, effects: dict[str, float], rng_seed: int = 1) -> pd.DataFrame:
    """A test accuracy per trial: its validation one plus `effects` (fractions) and noise."""
    rng = np.random.default_rng(rng_seed)
    out = trials.copy()
    shift = out["placement"].map(lambda p: effects.get(p, 0.0))
    out["final_test_accuracy"] = out["final_val_accuracy"] + shift + rng.normal(0, 0.003, len(out))
    return out


def test_the_verdict_is_on_test_accuracy_when_every_usable_trial_has_one():
    # Validation: no difference. Test: after_activation 5 points worse than none.
    trials = with_test(make_trials(), {"after_activation": -0.05})
    analysis = analyse(trials)
    assert analysis.metric == "final_test_accuracy"
    by = {c.placement: c for c in analysis.comparisons}
    assert by["after_activation"].outcome == "worse"
    assert by["before_activation"].outcome == "equivalent"
    assert any("on final test accuracy" in s for s in analysis.verdict)
    # The default target stays on validation: 95% of the best validation mean.
    val_best = trials.groupby("placement")["final_val_accuracy"].mean().max()
    assert analysis.target_accuracy == math.floor(0.95 * val_best * 100) / 100


def test_one_trial_without_a_test_accuracy_keeps_the_verdict_on_validation():
    trials = with_test(make_trials(), {"after_activation": -0.05})
    trials.loc[3, "final_test_accuracy"] = math.nan
    analysis = analyse(trials)
    assert analysis.metric == "final_val_accuracy"
    assert all(c.outcome == "equivalent" for c in analysis.comparisons)
    assert any("not every usable trial has a test accuracy" in s for s in analysis.verdict)


def test_trials_of_unequal_length_stay_on_validation():
    trials = with_test(make_trials(), {})
    trials.loc[0, "epochs_completed"] = 4.0
    assert analyse(trials).metric == "final_val_accuracy"


def recalibrated(trials: pd.DataFrame, gain: float) -> pd.DataFrame:
    out = trials.copy()
    mine = out["placement"] == "after_dropout"
    out["final_val_accuracy_bn_recalibrated"] = math.nan
    out.loc[mine, "final_val_accuracy_bn_recalibrated"] = out.loc[mine, "final_val_accuracy"] + gain
    return out


def test_recalibration_that_recovers_the_deficit_is_said_to_remove_it():
    trials = recalibrated(make_trials({"after_dropout": -0.05}), gain=0.05)
    analysis = analyse(trials)
    r = analysis.recalibration
    assert r is not None and r.reference == "before_activation"
    assert r.gain.n == 5 and r.gain_trials == 20 and abs(r.gain.mean - 5.0) < 1e-9  # over the 5 seeds
    assert r.deficit is not None and r.deficit.outcome == "worse"
    assert r.recalibrated is not None and r.recalibrated.outcome == "equivalent"
    assert r.deficit.family == 2  # the two comparisons are one Bonferroni family
    said = [s for s in analysis.verdict if "recalibration removes the deficit" in s]
    assert said and "outside the verdict's 5%" in said[0]  # its own family, said so
    assert "BN statistics re-estimated without dropout" in render_markdown(analysis)


def test_recalibration_that_changes_nothing_does_not_remove_the_deficit():
    trials = recalibrated(make_trials({"after_dropout": -0.05}), gain=0.0)
    analysis = analyse(trials)
    assert analysis.recalibration is not None and analysis.recalibration.recalibrated is not None
    assert analysis.recalibration.recalibrated.outcome == "worse"
    assert any("recalibration does not remove the deficit" in s for s in analysis.verdict)


def test_no_deficit_is_not_called_removed():
    analysis = analyse(recalibrated(make_trials(), gain=0.0))
    assert any("no established deficit" in s for s in analysis.verdict)
    assert not any("removes the deficit" in s for s in analysis.verdict)


def test_without_recalibrated_accuracies_nothing_is_said():
    analysis = analyse(make_trials({"after_dropout": -0.05}))
    assert analysis.recalibration is None
    assert not any("Re-estimating" in s for s in analysis.verdict)


def test_recalibration_is_read_on_validation_when_the_verdict_is_on_test():
    trials = recalibrated(with_test(make_trials({"after_dropout": -0.05}), {}), gain=0.05)
    analysis = analyse(trials)
    assert analysis.metric == "final_test_accuracy"
    r = analysis.recalibration
    assert r is not None and r.accuracy == "final_val_accuracy"
    assert r.recalibrated is not None and r.recalibrated.outcome == "equivalent"


def test_the_recalibration_gain_is_an_interval_over_seeds():
    """3 seeds x 8 cells whose gain moves with the seed: 24 trials are 3 units, and the interval says so."""
    trials = seed_effect_trials()
    mine = trials["placement"] == "after_dropout"
    per_seed = trials["seed"].map({0: 0.01, 1: 0.05, 2: 0.03})  # the gain each seed's rows give
    trials[RECALIBRATED] = trials["final_val_accuracy"] + np.where(mine, per_seed, 0.0)
    r = analyse(trials).recalibration
    assert r is not None and r.gain.n == 3 and r.gain_trials == 24
    assert r.gain.mean == pytest.approx(3.0)
    # Seed means 1, 5, 3 points: SD 2, t(2) = 4.30 -> 3 +- 4.97; 24 trials as units would give +-0.9.
    assert r.gain.ci_low == pytest.approx(3 - 4.303 * 2 / math.sqrt(3), abs=0.01)
    assert "n = 3 seed(s) (24 trials)" in describe(r)
