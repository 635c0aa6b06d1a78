"""Per-placement tuning: only the re-runs are compared, each placement at its own block, by seed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from trial_tables import make_trials, trial_row

from sweep.analysis import analyse
from sweep.report import render_html, render_markdown
from sweep.trial import CONFIRM_SEED

CHOSEN = {
    "before_activation": (0.1, "adam"),
    "after_activation": (0.25, "sgd"),
    "after_dropout": (0.5, "adam"),
    "none": (0.5, "sgd"),
}
BLOCKS = [(0.1, "adam"), (0.25, "sgd"), (0.5, "adam"), (0.5, "sgd")]


def per_placement_table(seeds: int = 5, effect: float = -0.03, rng_seed: int = 0) -> pd.DataFrame:
    """Tuning: every placement on every block, seed 0; after_dropout looks 10 points *better*
    there (what a comparison of tuning trials would wrongly report). Re-runs: each placement's own
    block on fresh seeds, after_dropout `effect` worse, a shared level per seed."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for placement in CHOSEN:
        for dropout, optimizer in BLOCKS:
            acc = 0.85 + 0.10 * (placement == "after_dropout") + rng.normal(0, 0.005)
            rows.append(trial_row(placement, dropout, optimizer, 0, acc) | {"phase": "tuning"})
    for s in range(seeds):
        seed = CONFIRM_SEED + s
        shared = rng.normal(0, 0.01)
        for placement, (dropout, optimizer) in CHOSEN.items():
            acc = 0.9 + shared + effect * (placement == "after_dropout") + rng.normal(0, 0.003)
            rows.append(trial_row(placement, dropout, optimizer, seed, acc) | {"phase": "confirmation"})
    return pd.DataFrame(rows)


def test_only_the_re_runs_are_compared_paired_by_seed_alone():
    analysis = analyse(per_placement_table())
    by_name = {c.placement: c for c in analysis.comparisons}
    assert set(by_name) == {"before_activation", "after_activation", "after_dropout"}
    assert all(c.n_pairs == 5 and c.n_seeds == 5 for c in by_name.values())
    assert by_name["after_dropout"].outcome == "worse"  # tuning said +10 points: it is ignored
    assert by_name["before_activation"].outcome == "equivalent"
    assert analysis.n_trials == 20 and analysis.n_seeds == 5
    assert {s.n_trials for s in analysis.placements} == {5}


def test_the_chosen_blocks_and_the_comparison_are_said_in_the_verdict():
    analysis = analyse(per_placement_table())
    own = analysis.own_settings
    assert own is not None and own.n_tuning == 16 and own.n_seeds == 5
    assert {b.placement: (b.dropout, b.optimizer) for b in own.blocks} == CHOSEN
    assert all(b.tuning_trials == 4 and b.confirmation_trials == 5 for b in own.blocks)
    first = analysis.verdict[0]
    assert first.startswith("Compared at each placement's own best settings (re-run on 5 fresh seeds)")
    assert "after_dropout dropout 0.5 with adam" in first
    assert any("matched on seed (each placement at its own settings)" in s for s in analysis.verdict)
    assert analysis.interactions == () and analysis.cell_means == () and analysis.best_dropout == ()
    statuses = {e.id: e.status for e in analysis.expectations}
    assert statuses[3] == "not tested" and "own tuned settings" in analysis.expectations[2].detail


def test_the_report_lists_each_placements_block_and_how_it_compared():
    analysis = analyse(per_placement_table())
    markdown = render_markdown(analysis)
    assert "compared at each placement's own best settings (re-run on 5 fresh seeds" in markdown
    section = markdown.split("## Settings each placement chose (per-placement tuning)")[1].split("\n## ")[0]
    assert "| after_activation | 0.25 | sgd | n/a | 4 |" in section  # the table records no rate
    assert "matched on seed alone (each placement at its own settings)" in markdown
    assert "Settings each placement chose" in render_html(analysis)
    data = json.loads(json.dumps(analysis.to_dict(), allow_nan=False))
    assert data["own_settings"]["blocks"][0]["placement"] == "before_activation"


def test_a_per_placement_sweep_without_re_runs_compares_nothing_and_says_why():
    trials = per_placement_table()
    analysis = analyse(trials[trials["phase"] == "tuning"])
    assert analysis.comparisons == () and analysis.best_placement is None
    assert "no placement has re-runs yet" in analysis.verdict[0]


def test_the_re_runs_are_known_by_their_fresh_seeds_when_phases_are_missing():
    trials = per_placement_table().drop(columns="phase")
    analysis = analyse(trials)
    assert analysis.own_settings is not None and analysis.n_trials == 20
    assert {c.n_pairs for c in analysis.comparisons} == {5}


def test_a_shared_sweep_has_no_own_settings():
    trials = make_trials(seeds=2).assign(phase="")
    analysis = analyse(trials)
    assert analysis.own_settings is None and analysis.n_trials == len(trials)
    assert "own best settings" not in render_markdown(analysis)
