"""Whether the placement effect depends on dropout and optimizer: planted interactions, the null rate."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.oneway import anova_oneway
from trial_tables import make_trials

from sweep.analysis import analyse
from sweep.analysis.interactions import describe_cells, interaction_family, welch_f_test
from sweep.report import render_html, render_markdown


def interaction(analysis, placement):
    return next(i for i in analysis.interactions if i.placement == placement)


def outcomes(i) -> dict[tuple[float, str], str]:
    return {(c.dropout, c.optimizer): c.outcome for c in i.cells}


def test_the_f_test_is_statsmodels_welch_anova_of_the_differences_on_their_cell():
    rng = np.random.default_rng(11)
    for n_seeds in (2, 3, 7):
        index = pd.MultiIndex.from_product(
            [[0.1, 0.5, 0.7], ["adam", "sgd"], range(n_seeds)], names=["dropout", "optimizer", "seed"]
        )
        data = index.to_frame(index=False)
        sd = np.where(data["optimizer"] == "sgd", 3.0, 1.0)  # unequal cell variances
        data = data.assign(y=rng.normal(0, 1, len(index)) * sd)
        data.loc[data["dropout"] == 0.7, "y"] += rng.normal(0, 1)
        codes = data.groupby(["dropout", "optimizer"]).ngroup().to_numpy()
        f_value, df_cells, df_resid, p_value = welch_f_test(data["y"].to_numpy(), codes, 6)
        expected = anova_oneway(data["y"], data["dropout"].astype(str) + data["optimizer"], use_var="unequal")
        assert f_value == pytest.approx(expected.statistic, rel=1e-9)
        assert p_value == pytest.approx(expected.pvalue, rel=1e-9)
        assert (df_cells, df_resid) == pytest.approx(expected.df, rel=1e-9)


def test_planted_interaction_is_found_and_said_per_cell():
    """after_dropout loses 5 points at dropout >= 0.5 and nothing at 0.1."""
    effects = {("after_dropout", 0.5): -0.05, ("after_dropout", 0.7): -0.05}
    trials = make_trials(effects, seeds=6, dropouts=(0.1, 0.5, 0.7), noise=0.002)
    analysis = analyse(trials)
    found = interaction(analysis, "after_dropout")
    assert found.depends and found.p_adjusted < 0.001
    assert (found.n_cells, found.df_cells, found.family) == (6, 5, 3)
    assert 5 < found.df_resid < 30  # Welch's degrees of freedom, from 6 cells of 6 seeds
    assert outcomes(found) == {
        (0.1, "adam"): "equivalent",
        (0.1, "sgd"): "equivalent",
        (0.5, "adam"): "worse",
        (0.5, "sgd"): "worse",
        (0.7, "adam"): "worse",
        (0.7, "sgd"): "worse",
    }
    for cell in found.cells:
        assert cell.diff.level == pytest.approx(1 - 0.025 / 18)  # every cell of the 3 tested comparisons
        assert cell.diff.ci_low < cell.diff.mean < cell.diff.ci_high
    assert found.how() == "worse at dropout \u2265 0.5, equivalent at dropout 0.1"
    sentence = next(s for s in analysis.verdict if s.startswith("Against none, after_dropout"))
    assert sentence.startswith(
        "Against none, after_dropout is worse at dropout \u2265 0.5, equivalent at dropout 0.1"
    )
    assert "Welch F(5, " in sentence and "is not the answer" in sentence
    assert not any(s.startswith("after_dropout is worse than none") for s in analysis.verdict)
    others = [i for i in analysis.interactions if i.placement != "after_dropout"]
    assert others and not any(i.depends for i in others)
    assert any(s.startswith("No other comparison's effect is shown to depend") for s in analysis.verdict)


def test_a_constant_effect_claims_no_interaction_and_keeps_the_overall_delta():
    analysis = analyse(make_trials({"after_dropout": -0.03}, seeds=6, noise=0.002))
    assert not any(i.depends for i in analysis.interactions)
    assert all(math.isfinite(i.p_adjusted) for i in analysis.interactions)
    assert any(s.startswith("after_dropout is worse than none by more than") for s in analysis.verdict)
    assert any(s.startswith("No comparison's effect is shown to depend on dropout") for s in analysis.verdict)
    assert not any(s.startswith("Against ") for s in analysis.verdict)
    assert not any("changes with" in s for s in analysis.verdict)  # untested cell means stay in tables


def test_an_effect_in_one_optimizer_only_is_said_by_optimizer():
    trials = make_trials(seeds=6, noise=0.002)
    hit = (trials["placement"] == "after_activation") & (trials["optimizer"] == "sgd")
    trials.loc[hit, "final_val_accuracy"] -= 0.04
    found = interaction(analyse(trials), "after_activation")
    assert found.depends
    assert found.how() == "worse with sgd, equivalent with adam"


def test_cells_that_vary_on_both_axes_are_listed_one_by_one():
    trials = make_trials(seeds=8, noise=0.002)
    hit = (
        (trials["placement"] == "after_dropout") & (trials["optimizer"] == "sgd") & (trials["dropout"] == 0.5)
    )
    trials.loc[hit, "final_val_accuracy"] -= 0.05
    found = interaction(analyse(trials), "after_dropout")
    assert found.depends
    assert found.how() == (
        "worse at dropout 0.5 with sgd, equivalent at dropout 0.1 with adam, at dropout 0.1 with sgd "
        "and at dropout 0.5 with adam"
    )


def test_one_cell_or_no_residual_gives_no_interaction_claim():
    assert analyse(make_trials(dropouts=(0.1,), optimizers=("adam",))).interactions == ()
    analysis = analyse(make_trials({("after_dropout", 0.5): -0.05}, seeds=1))  # one pair a cell
    assert analysis.interactions and all(math.isnan(i.f_value) for i in analysis.interactions)
    assert not any(i.depends for i in analysis.interactions)
    assert not any("depend" in s for s in analysis.verdict)


def test_null_families_claim_an_interaction_at_most_5_percent_of_the_time():
    """1000 sweeps of 3 placements against none, no interaction: noise on every trial plus a
    shared level per cell and seed (what pairing removes). Any claimed interaction counts.

    Bonferroni bounds the family-wise rate by ALPHA_CELLS (2.5%), so 1000 sweeps are allowed two
    Monte Carlo standard errors above it."""
    rng = np.random.default_rng(2025)
    sims = 1000
    index = pd.MultiIndex.from_product(
        [[0.1, 0.5], ["adam", "sgd"], range(5)], names=["dropout", "optimizer", "seed"]
    )
    any_claim = single = 0
    for _ in range(sims):
        acc = rng.normal(0, 3.0, (1, len(index))) + rng.normal(0, 1.0, (4, len(index)))
        acc[:3] -= 2.0  # a real, constant placement effect: not an interaction
        named = [(f"p{i}", "none", pd.Series(acc[i] - acc[3], index=index)) for i in range(3)]
        family = interaction_family(named, margin=1.0)
        any_claim += any(i.depends for i in family)
        single += family[0].p_value < 0.05
    assert any_claim / sims <= 0.025 + 2 * math.sqrt(0.025 * 0.975 / sims)
    assert any_claim > 0  # the test has power to fail: the rule is not simply never "depends"
    assert abs(single / sims - 0.05) < 0.02  # each Welch test alone is calibrated, not conservative


def test_per_cell_calls_in_cells_without_an_effect_are_rarely_wrong():
    """A real interaction (-4 points in two cells): the other cells are falsely called better or
    worse in at most 5% of sweeps, the simultaneous intervals' promise."""
    rng = np.random.default_rng(7)
    index = pd.MultiIndex.from_product(
        [[0.1, 0.5], ["adam", "sgd"], range(5)], names=["dropout", "optimizer", "seed"]
    )
    effect = np.where(index.get_level_values("dropout") == 0.5, -4.0, 0.0)
    wrong = found = 0
    for _ in range(400):
        diffs = effect + rng.normal(0, 1.0, len(index))
        (result,) = interaction_family([("after_dropout", "none", pd.Series(diffs, index=index))], 1.0)
        found += result.depends
        wrong += any(c.outcome in ("better", "worse") for c in result.cells if c.dropout == 0.1)
    assert found / 400 > 0.95
    assert wrong / 400 <= 0.05


def test_describe_cells_says_one_outcome_everywhere_with_the_range():
    trials = make_trials({("after_dropout", 0.5): -0.08, ("after_dropout", 0.1): -0.03}, seeds=6, noise=0.002)
    found = interaction(analyse(trials), "after_dropout")
    assert found.depends
    assert describe_cells(found.cells).startswith("worse in every cell, by different amounts (\u0394 \u2212")


def test_interactions_reach_the_json_the_metrics_and_the_report():
    effects = {("after_dropout", 0.5): -0.05}
    analysis = analyse(make_trials(effects, seeds=8, noise=0.002))
    data = json.loads(json.dumps(analysis.to_dict(), allow_nan=False))
    entry = next(i for i in data["interactions"] if i["placement"] == "after_dropout")
    assert entry["depends"] is True and entry["reference"] == "none"
    assert {c["outcome"] for c in entry["cells"]} == {"worse", "equivalent"}
    assert "interaction.after_dropout_vs_none.p_adjusted" in analysis.summary_metrics()
    markdown = render_markdown(analysis)
    assert "## Does the placement effect depend on dropout and optimizer?" in markdown
    assert "## after_dropout \u2212 none by dropout \u00d7 optimizer" in markdown
    assert "## before_activation \u2212 none by dropout" not in markdown  # no per-cell table without one
    assert "<span class='status worse'>worse</span>" in render_html(analysis)
