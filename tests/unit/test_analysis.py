"""Statistics over hand-built trial tables with planted effects."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.power import TTestPower
from trial_tables import ALL, make_trials, trial_row

from sweep.analysis import analyse


def make_curves(trials: pd.DataFrame, tau: dict[str, float], epochs: int = 10) -> pd.DataFrame:
    """Validation accuracy rising as final * (1 - exp(-epoch / tau[placement]))."""
    rows = []
    for t in trials.itertuples():
        for epoch in range(1, epochs + 1):
            val = t.final_val_accuracy * (1 - math.exp(-epoch / tau[t.placement]))
            rows.append(
                {
                    "run_id": t.run_id,
                    "epoch": epoch,
                    "loss": 1.0,
                    "accuracy": val,
                    "val_loss": 1.0,
                    "val_accuracy": val,
                }
            )
    return pd.DataFrame(rows)


def comparison(analysis, placement):
    return next(c for c in analysis.comparisons if c.placement == placement)


def test_planted_three_point_loss_is_detected_with_the_right_sign():
    trials = make_trials({"after_dropout": -0.03})
    analysis = analyse(trials)
    c = comparison(analysis, "after_dropout")
    assert c.outcome == "worse"
    assert c.diff.mean < 0
    assert c.diff.ci_low <= -3 <= c.diff.ci_high
    assert c.n_pairs == 20 and c.n_seeds == 5
    assert c.reference == "none" and c.p_adjusted < 0.05 and c.effect_size < 0
    assert any(s.startswith("after_dropout is worse than") for s in analysis.verdict)
    assert analysis.best_placement != "after_dropout"


def test_no_difference_is_equivalent_within_the_margin_and_names_no_winner():
    analysis = analyse(make_trials())
    assert {c.outcome for c in analysis.comparisons} == {"equivalent"}
    assert all(c.diff.ci_low > -1 and c.diff.ci_high < 1 for c in analysis.comparisons)
    assert not any(" is worse than " in s or " is better than " in s for s in analysis.verdict)
    assert sum("is equivalent to none within the \u00b11-point margin" in s for s in analysis.verdict) == 3
    assert any("No placement is shown to be better or worse than none" in s for s in analysis.verdict)


def test_equivalent_sentence_gives_delta_simultaneous_ci_and_pairs():
    analysis = analyse(make_trials())
    c = analysis.comparisons[0]
    sentence = next(s for s in analysis.verdict if "is equivalent to" in s)
    assert f"n = {c.n_seeds} seed(s) ({c.n_pairs} pairs)" in sentence
    assert "simultaneous CI (each at 99.17%)" in sentence and "\u0394 = " in sentence


def test_too_small_sweep_cannot_tell_and_says_how_many_seeds_are_needed():
    trials = make_trials(seeds=1, dropouts=(0.1,))
    analysis = analyse(trials)
    assert {c.outcome for c in analysis.comparisons} == {"cannot tell"}
    c = analysis.comparisons[0]
    assert c.n_pairs == 2
    assert c.seeds_needed is not None and c.seeds_needed >= 2
    power = TTestPower().power(effect_size=1 / c.power_sd, alpha=0.025 / 3, nobs=np.arange(2, 500))
    assert c.seeds_needed == max(3, 2 + int(np.argmax(power >= 0.8)))  # seeds, not pairs
    assert c.pairs_needed == 2 * c.seeds_needed
    sentence = next(s for s in analysis.verdict if s.startswith("This sweep cannot tell"))
    assert f"about {c.seeds_needed} seeds" in sentence


def test_one_pair_per_placement_still_answers_without_crashing():
    trials = make_trials(seeds=1, dropouts=(0.1,), optimizers=("sgd",))
    analysis = analyse(trials)
    assert all(c.outcome == "cannot tell" and math.isnan(c.p_value) for c in analysis.comparisons)
    assert any("run at least 2 seeds" in s for s in analysis.verdict)


def test_identical_results_give_nan_p_and_cannot_tell_without_warnings():
    trials = make_trials(placements=ALL[:2], noise=0.0)
    trials["final_val_accuracy"] = 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        analysis = analyse(trials)
    c = analysis.comparisons[0]
    assert math.isnan(c.p_value) and math.isnan(c.effect_size)
    assert c.outcome == "cannot tell"


def test_wide_interval_cannot_tell_even_with_enough_pairs():
    trials = make_trials(placements=ALL[:2], seeds=3, noise=0.03)
    c = analyse(trials).comparisons[0]
    assert c.n_pairs == 12 and c.n_seeds == 3
    assert c.diff.ci_width > 2
    assert c.outcome == "cannot tell"


def test_failed_and_diverged_trials_count_as_failed_and_leave_the_pairs():
    trials = make_trials({"after_dropout": -0.03})
    failed = trials.index[trials["placement"] == "none"][:3]
    trials.loc[failed, "status"] = "FAILED"
    trials.loc[failed, ["final_val_accuracy", "best_val_accuracy", "final_val_loss"]] = math.nan
    trials.loc[failed, "error"] = "ResourceExhaustedError"
    diverged = trials.index[trials["placement"] == "none"][3]
    trials.loc[diverged, "final_val_loss"] = math.nan
    analysis = analyse(trials)
    none = analysis.placement("none")
    assert none.n_trials == 20 and none.n_finished == 17
    assert none.failed_share == pytest.approx(4 / 20)
    # The four lost trials are seed 0's: the placement's mean is over the 4 seeds left.
    assert set(trials.loc[failed.append(pd.Index([diverged])), "seed"]) == {0}
    assert none.final_val_accuracy.n == 4
    assert comparison(analysis, "after_dropout").n_pairs == 16
    assert analysis.placement("before_activation").failed_share == 0
    assert any("4 of 80 trials failed or diverged" in s for s in analysis.verdict)


def test_epochs_to_target_censors_runs_that_never_reach_it():
    trials = pd.DataFrame([trial_row("before_activation", 0.1, "sgd", seed, 0.85) for seed in range(3)])
    ids = trials["run_id"].tolist()
    rising = {
        ids[0]: [0.5, 0.7, 0.8, 0.85],
        ids[1]: [0.4, 0.6, 0.7, 0.75, 0.82],
        ids[2]: [0.3, 0.4, 0.5, 0.6, 0.7],
    }
    curves = pd.DataFrame(
        [
            {"run_id": run, "epoch": e, "val_accuracy": v}
            for run, values in rising.items()
            for e, v in enumerate(values, start=1)
        ]
    )
    time = analyse(trials, curves, target_accuracy=0.8).placement("before_activation").time_to_target
    assert (time.n_reached, time.n, time.horizon) == (2, 3, 5)
    assert time.reached_share == pytest.approx(2 / 3)
    # Kaplan-Meier: S = 2/3 after epoch 3 and 1/3 after epoch 5, where the third run is censored.
    assert time.median == 5
    assert time.restricted_mean == pytest.approx((3 + 5 + 5) / 3)


def test_default_target_is_95_percent_of_the_best_mean_rounded_down():
    trials = make_trials({"none": -0.02})
    analysis = analyse(trials)
    best = max(s.final_val_accuracy.mean for s in analysis.placements)
    assert analysis.target_is_default
    assert analysis.target_accuracy == pytest.approx(math.floor(95 * best) / 100)


def test_empty_or_missing_curves_leave_epochs_to_target_empty():
    trials = make_trials(seeds=2)
    for curves in (None, pd.DataFrame()):
        time = analyse(trials, curves).placement("none").time_to_target
        assert time.n == 0 and math.isnan(time.reached_share) and math.isnan(time.median)


def test_summary_metrics_have_the_documented_keys_and_only_finite_values():
    trials = make_trials()
    metrics = analyse(trials, make_curves(trials, dict.fromkeys(ALL, 2.0))).summary_metrics()
    pre = "placement.before_activation."
    for suffix in (
        "val_accuracy_mean",
        "val_accuracy_ci_low",
        "val_accuracy_ci_high",
        "val_accuracy_std",
        "val_accuracy_n",
        "best_val_accuracy_mean",
        "val_loss_mean",
        "epochs_to_target_median",
        "epochs_to_target_restricted_mean",
        "failed_share",
    ):
        assert pre + suffix in metrics
    assert "comparison.after_dropout_vs_none.p_adjusted" in metrics
    assert "placement.none.bn_variance_shift_geomean" not in metrics  # NaN for the control
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())


def test_to_dict_is_json_serialisable():
    trials = make_trials({"after_dropout": -0.03}, seeds=2)
    trials.loc[0, ["status", "final_val_accuracy"]] = ["FAILED", math.nan]
    analysis = analyse(trials, make_curves(trials, dict.fromkeys(ALL, 2.0)))
    data = json.loads(json.dumps(analysis.to_dict(), allow_nan=False))
    assert data["best_placement"] == analysis.best_placement
    assert data["cell_means"][0]["factor"] == "dropout"
    assert len(data["expectations"]) == 4


def test_mean_variance_shift_is_reported_per_placement_and_dropout():
    analysis = analyse(make_trials(seeds=2))
    rows = {(v.placement, v.dropout): v for v in analysis.variance_shift}
    assert rows[("after_dropout", 0.5)].ratio.mean == pytest.approx(2.0)
    assert rows[("after_dropout", 0.5)].expected == pytest.approx(2.0)
    assert rows[("after_dropout", 0.5)].expected_is_lower_bound
    assert rows[("before_activation", 0.5)].expected is None
    assert ("none", 0.5) not in rows
    assert any("Li et al. 2019" in s for s in analysis.verdict)


def test_cell_mean_tables_name_each_levels_winner_and_note_a_flip():
    effects = {("before_activation", 0.1): 0.02, ("after_activation", 0.5): 0.02}
    analysis = analyse(make_trials(effects))
    by_dropout = next(m for m in analysis.cell_means if m.factor == "dropout")
    assert list(by_dropout.table.index) == list(ALL)
    assert dict(by_dropout.winners) == {0.1: "before_activation", 0.5: "after_activation"}
    assert by_dropout.note is not None and "changes with dropout" in by_dropout.note
    assert by_dropout.counts.loc["none", 0.1] == 10


def test_expectation_2_confirmed_when_after_dropout_loses_only_at_high_dropout():
    expectation = analyse(make_trials({("after_dropout", 0.5): -0.05})).expectations[1]
    assert expectation.id == 2
    assert expectation.status == "confirmed", expectation.detail


def test_expectation_1_confirmed_when_before_and_after_agree_within_a_point():
    expectation = analyse(make_trials()).expectations[0]
    assert expectation.status == "confirmed", expectation.detail
    assert "by optimizer" in expectation.detail


def test_expectation_3_confirmed_when_bn_prefers_less_dropout():
    effects = {
        ("before_activation", 0.5): -0.03,
        ("after_activation", 0.5): -0.03,
        ("after_dropout", 0.5): -0.03,
        ("none", 0.1): -0.03,
    }
    analysis = analyse(make_trials(effects))
    groups = {b.group: b.dropout for b in analysis.best_dropout}
    assert groups == {"with BN": 0.1, "without BN": 0.5}
    assert analysis.expectations[2].status == "confirmed", analysis.expectations[2].detail


def test_expectation_4_confirmed_when_bn_converges_faster_than_none():
    trials = make_trials()
    curves = make_curves(trials, dict.fromkeys(ALL, 1.5) | {"none": 4.0})
    analysis = analyse(trials, curves, target_accuracy=0.8)
    assert analysis.expectations[3].status == "confirmed", analysis.expectations[3].detail
    none, bn = analysis.placement("none"), analysis.placement("before_activation")
    assert none.time_to_target.median > bn.time_to_target.median
    assert any(s.startswith("Epochs to reach 80%") for s in analysis.verdict)


def test_expectations_are_not_tested_when_the_sweep_lacks_the_factors():
    trials = make_trials(placements=ALL[:2], dropouts=(0.1,))
    statuses = [e.status for e in analyse(trials).expectations]
    assert statuses[1:] == ["not tested", "not tested", "not tested"]


def test_unknown_metric_and_missing_columns_are_rejected_with_what_is_allowed():
    trials = make_trials(placements=("before_activation", "none"), seeds=1)
    with pytest.raises(ValueError, match="metric: must be one of final_val_accuracy"):
        analyse(trials, metric="val_loss")
    with pytest.raises(ValueError, match="missing columns placement"):
        analyse(trials.drop(columns="placement"))
    with pytest.raises(ValueError, match=r"target_accuracy: must be a fraction .* \(got 92\)"):
        analyse(trials, target_accuracy=92)
    with pytest.raises(ValueError, match=r"reference: must be one of .*\(before_activation, none\) or all"):
        analyse(trials, reference="after_dropout")
    with pytest.raises(ValueError, match=r"equivalence_margin: must be > 0 .* \(got 0\)"):
        analyse(trials, equivalence_margin=0)


def test_no_usable_trial_gives_a_plain_verdict():
    trials = make_trials(placements=("before_activation", "none"), seeds=1)
    trials["status"] = "FAILED"
    analysis = analyse(trials)
    assert analysis.best_placement is None and analysis.comparisons == ()
    assert analysis.verdict[0].startswith("No trial finished")
    json.dumps(analysis.to_dict(), allow_nan=False)


def test_a_placement_whose_trials_all_failed_is_named_and_not_compared():
    trials = make_trials(seeds=2)
    trials.loc[trials["placement"] == "after_dropout", "status"] = "FAILED"
    analysis = analyse(trials)
    assert "after_dropout" not in {c.placement for c in analysis.comparisons}
    assert analysis.placement("after_dropout").failed_share == 1.0
    assert "after_dropout has no usable trial, so it is not compared." in analysis.verdict


def test_without_usable_none_trials_the_default_compares_every_pair():
    trials = make_trials(seeds=2)
    trials.loc[trials["placement"] == "none", "status"] = "FAILED"
    analysis = analyse(trials)
    assert analysis.reference == "all"
    assert len(analysis.comparisons) == 3  # the three BN placements, pairwise


# --- three outcomes, the declared reference, and one answer per data set ----------------------


def test_planted_small_real_difference_is_worse_and_says_so():
    analysis = analyse(make_trials({"after_activation": -0.02}, noise=0.003))
    c = comparison(analysis, "after_activation")
    assert c.outcome == "worse" and c.excludes_zero and c.beyond_margin
    assert any(s.startswith("after_activation is worse than none by more than the") for s in analysis.verdict)


def test_interval_excluding_zero_inside_the_margin_is_equivalent_and_never_indistinguishable():
    analysis = analyse(make_trials({"after_activation": -0.005}, seeds=10, noise=0.001))
    c = comparison(analysis, "after_activation")
    assert c.diff.ci_high < 0 and c.diff.ci_low > -1  # excludes 0, inside +-1 point
    assert c.outcome == "equivalent"
    sentence = next(s for s in analysis.verdict if s.startswith("after_activation is equivalent to none"))
    assert "the interval excludes 0, so it is slightly worse, by less than the margin" in sentence
    report = " ".join(analysis.verdict) + " ".join(e.detail for e in analysis.expectations)
    assert "indistinguishable" not in report


def test_a_narrower_margin_turns_the_same_interval_into_worse():
    trials = make_trials({"after_activation": -0.005}, seeds=10, noise=0.001)
    c = comparison(analyse(trials, equivalence_margin=0.2), "after_activation")
    assert c.outcome == "worse" and c.margin == 0.2


def test_interval_past_the_margin_and_across_zero_cannot_tell():
    analysis = analyse(make_trials({"after_activation": -0.008}, seeds=3, noise=0.012))
    c = comparison(analysis, "after_activation")
    assert c.diff.ci_low < -1 and c.diff.ci_high > 0
    assert c.outcome == "cannot tell"
    assert any(s.startswith("This sweep cannot tell after_activation from none") for s in analysis.verdict)


def test_the_reference_is_declared_not_the_best_by_data():
    analysis = analyse(make_trials({"none": -0.03}))
    assert analysis.best_placement != "none"
    assert {c.reference for c in analysis.comparisons} == {"none"}
    assert {c.outcome for c in analysis.comparisons} == {"better"}
    chosen = analyse(make_trials({"none": -0.03}), reference="after_dropout")
    assert {(c.placement, c.reference) for c in chosen.comparisons} == {
        ("before_activation", "after_dropout"),
        ("after_activation", "after_dropout"),
        ("none", "after_dropout"),
    }


def test_all_pairs_are_one_family_of_six_simultaneous_intervals():
    analysis = analyse(make_trials({"after_dropout": -0.03}), reference="all")
    assert analysis.reference == "all" and len(analysis.comparisons) == 6
    assert {c.family for c in analysis.comparisons} == {6}
    assert all(c.diff.level == pytest.approx(1 - 0.025 / 6) for c in analysis.comparisons)
    assert any("every pair" in s for s in analysis.verdict)


@pytest.mark.parametrize("effect", [0.0, -0.004, -0.009, -0.02])
def test_the_evidence_check_and_the_verdict_give_one_answer_for_one_pair(effect):
    trials = make_trials({"after_activation": effect}, seeds=4, noise=0.006)
    analysis = analyse(trials, reference="all")
    c = next(
        c
        for c in analysis.comparisons
        if {c.placement, c.reference} == {"after_activation", "before_activation"}
    )
    expected = {"equivalent": "confirmed"}.get(c.outcome, "refuted" if c.beyond_margin else "cannot tell")
    assert analysis.expectations[0].status == expected
    assert f"{c.diff.ci_low:.1f}".replace("-", "\u2212") in analysis.expectations[0].detail


def test_too_few_trials_give_no_accuracy_interval_and_say_so():
    trials = make_trials(seeds=1, dropouts=(0.1,))  # 2 trials per placement
    trials.loc[trials["placement"] == "none", "final_val_accuracy"] = [0.5, 0.99]
    analysis = analyse(trials)
    none = analysis.placement("none")
    assert none.final_val_accuracy.n == 1 and not none.final_val_accuracy.has_interval
    assert any("n = 1 seed(s), too few seeds for an interval" in s for s in analysis.verdict)


def test_accuracy_intervals_stay_within_0_and_100_percent():
    trials = make_trials(seeds=3, dropouts=(0.1,), noise=0.05)
    trials["final_val_accuracy"] = np.resize([0.55, 0.999, 1.0, 0.99, 0.97], len(trials))
    for s in analyse(trials).placements:
        est = s.final_val_accuracy
        assert est.has_interval and 0 <= est.ci_low <= est.ci_high <= 1


# --- ASHA: unequal lengths compared at the epoch every trial reached ---------------------------


def test_trials_stopped_early_are_compared_at_the_epoch_all_reached():
    trials = make_trials({"after_dropout": -0.03})
    curves = make_curves(trials, dict.fromkeys(ALL, 2.0))
    stopped = trials.index[(trials["placement"] == "none") & (trials["seed"] < 2)]
    trials.loc[stopped, "epochs_completed"] = 4.0
    curves = curves[~(curves["run_id"].isin(trials.loc[stopped, "run_id"]) & (curves["epoch"] > 4))]
    analysis = analyse(trials, curves, target_accuracy=0.8)
    assert analysis.equal_length is not None
    assert (analysis.equal_length.epoch, analysis.equal_length.n_stopped) == (4, len(stopped))
    at_4 = curves[curves["epoch"] == 4].set_index("run_id")["val_accuracy"]
    expected = at_4[trials.loc[trials["placement"] == "before_activation", "run_id"]].mean()
    assert analysis.placement("before_activation").final_val_accuracy.mean == pytest.approx(expected)
    assert analysis.placement("none").time_to_target.horizon == 4
    assert analysis.verdict[0].startswith(f"{len(stopped)} usable trials stopped before epoch 10")
    assert "taken at epoch 4" in analysis.verdict[0]


def test_trials_of_equal_length_are_compared_as_they_ended():
    trials = make_trials(seeds=2)
    analysis = analyse(trials, make_curves(trials, dict.fromkeys(ALL, 2.0)))
    assert analysis.equal_length is None
    assert analysis.placement("none").final_val_accuracy.mean == pytest.approx(
        trials.loc[trials["placement"] == "none", "final_val_accuracy"].mean()
    )


# --- time to target with censoring ----------------------------------------------------------


def test_none_never_reaching_the_target_gives_a_bound_on_how_much_sooner_bn_gets_there():
    trials = make_trials()
    curves = make_curves(trials, dict.fromkeys(ALL, 1.5) | {"none": 50.0})
    analysis = analyse(trials, curves, target_accuracy=0.8)
    none = analysis.placement("none").time_to_target
    assert none.n_reached == 0 and none.restricted_mean == 10 and math.isnan(none.median)
    td = analysis.time_difference
    assert td is not None and td.is_bound
    assert any("at least" in s and "epochs sooner than none" in s for s in analysis.verdict)
    assert analysis.expectations[3].status == "confirmed"
    assert "so the true gap is larger" in analysis.expectations[3].detail


# --- the seed as the unit beyond the comparisons --------------------------------------------------


def test_a_placements_mean_accuracy_has_its_interval_over_seeds():
    """3 seeds x 8 cells with a strong seed effect: 24 trials as units give a narrow interval."""
    from trial_tables import seed_effect_trials

    from sweep.analysis import Estimate

    trials = seed_effect_trials()
    analysis = analyse(trials)
    none = analysis.placement("none")
    by_trial = Estimate.of_accuracy(trials.loc[trials["placement"] == "none", "final_val_accuracy"])
    assert none.final_val_accuracy.n == 3 and by_trial.n == 24
    assert none.final_val_accuracy.ci_width > 5 * by_trial.ci_width
    highest = next(s for s in analysis.verdict if s.startswith("Highest mean"))
    assert "n = 3 seeds)" in highest and "trials" not in highest


def test_no_seeds_are_quoted_for_a_comparison_already_decided():
    analysis = analyse(make_trials({"after_dropout": -0.03}))
    decided = [c for c in analysis.comparisons if c.outcome != "cannot tell"]
    assert decided and all(c.seeds_needed is None and c.pairs_needed is None for c in decided)
    undecided = analyse(make_trials(seeds=1, dropouts=(0.1,))).comparisons
    assert all(c.outcome == "cannot tell" and c.seeds_needed for c in undecided)


def test_the_best_dropout_preference_is_paired_by_seed_and_corrected_for_the_choice():
    """Expectation 3 picks each group's best rate on the data: its test covers every pair of rates."""
    from scipy import stats

    effects = {(p, 0.5): -0.03 for p in ALL[:3]} | {("none", 0.1): -0.03, ("none", 0.3): -0.01}
    trials = make_trials(effects, dropouts=(0.1, 0.3, 0.5))
    analysis = analyse(trials)
    expectation = analysis.expectations[2]
    assert {b.group: b.dropout for b in analysis.best_dropout} == {"with BN": 0.1, "without BN": 0.5}
    bn = trials[trials["placement"] != "none"]
    means = bn.groupby(["seed", "dropout"])["final_val_accuracy"].mean().unstack()
    p = stats.ttest_rel(means[0.1], means[0.5]).pvalue
    # 3 rates: 3 pairs the data could have picked.
    assert f"with BN adjusted p = {min(1.0, 3 * p):.2g}" in expectation.detail
    assert "Bonferroni over the 3 pair(s) of the 3 dropout rates" in expectation.detail
    assert expectation.status == "confirmed", expectation.detail
