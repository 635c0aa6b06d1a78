"""Learning rates drawn per block: pairing within a block, each placement's best rate, the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
from trial_tables import trial_row

from sweep.analysis import analyse
from sweep.analysis.rates import best_rates, drawn_rates
from sweep.analysis.trials import clean_trials
from sweep.report import render_markdown
from sweep.trial import CONFIRM_SEED

RATES = (0.01, 0.1, 1.0)  # three drawn blocks of one optimizer, one dropout rate


def tolerance_table(seeds: int = 4) -> pd.DataFrame:
    """BN does best at the highest rate; none does best at the lowest and breaks down at 1.0."""
    rng = np.random.default_rng(0)
    accuracy = {
        "before_activation": {0.01: 0.85, 0.1: 0.90, 1.0: 0.93},
        "none": {0.01: 0.88, 0.1: 0.86, 1.0: 0.40},
    }
    rows = []
    for seed in range(seeds):
        shared = rng.normal(0, 0.01)
        for rate in RATES:
            for placement, by_rate in accuracy.items():
                acc = by_rate[rate] + shared + rng.normal(0, 0.002)
                row = trial_row(placement, 0.0, "sgd", seed, acc)
                rows.append(row | {"learning_rate": rate, "run_id": f"{row['run_id']}-{rate}"})
    return pd.DataFrame(rows)


def test_each_placements_best_rate_is_its_best_blocks_rate() -> None:
    usable = clean_trials(tolerance_table(), "final_val_accuracy")
    found = {b.placement: b for b in best_rates(usable, "final_val_accuracy", ["before_activation", "none"])}
    assert found["before_activation"].learning_rate == 1.0 and found["none"].learning_rate == 0.01
    bn = found["before_activation"]
    assert (bn.optimizer, bn.dropout, bn.n, bn.blocks) == ("sgd", 0.0, 4, 3)
    assert (bn.lowest_rate, bn.highest_rate) == (0.01, 1.0)
    assert abs(bn.mean - 0.93) < 0.02


def test_fixed_rates_give_no_best_rate_section() -> None:
    fixed = tolerance_table()
    fixed = fixed[fixed["learning_rate"] == 0.1]
    assert not drawn_rates(clean_trials(fixed, "final_val_accuracy"))
    assert analyse(fixed).best_rates == ()
    unrecorded = tolerance_table().drop(columns="learning_rate")  # a table from elsewhere
    assert clean_trials(unrecorded, "final_val_accuracy")["learning_rate"].eq(0.0).all()


def test_placements_are_paired_within_a_block_so_each_seed_pairs_once_per_rate() -> None:
    analysis = analyse(tolerance_table(), reference="none")
    (c,) = analysis.comparisons
    assert c.n_pairs == 4 * 3 and c.n_seeds == 4  # blocks that differ only in their rate stay apart
    # Without the rate in the key the three blocks of a seed would collapse into one pair.


def test_the_report_shows_each_placements_best_rate() -> None:
    markdown = render_markdown(analyse(tolerance_table(), reference="none"))
    section = markdown.split("## Best learning rate per placement (rates drawn per block)")[1].split("\n## ")[
        0
    ]
    assert "| before_activation | 1 | sgd | 0 |" in section
    assert "| none | 0.01 | sgd | 0 |" in section
    assert "0.01 to 1" in section


def test_a_per_placement_sweep_reports_the_rate_each_placement_chose() -> None:
    rows = []
    chosen = {"before_activation": 1.0, "none": 0.01}
    for placement, rate_chosen in chosen.items():
        for rate in RATES:
            row = trial_row(placement, 0.0, "sgd", 0, 0.9 if rate == rate_chosen else 0.7)
            rows.append(row | {"learning_rate": rate, "run_id": f"{row['run_id']}-{rate}", "phase": "tuning"})
        for s in range(3):
            row = trial_row(placement, 0.0, "sgd", CONFIRM_SEED + s, 0.9 + 0.01 * s)
            rows.append(row | {"learning_rate": rate_chosen, "phase": "confirmation"})
    analysis = analyse(pd.DataFrame(rows))
    assert analysis.own_settings is not None
    assert {b.placement: b.learning_rate for b in analysis.own_settings.blocks} == chosen
    assert "before_activation dropout 0 with sgd at learning rate 1;" in analysis.verdict[0]
    section = render_markdown(analysis).split("## Settings each placement chose")[1].split("\n## ")[0]
    assert "| none | 0 | sgd | 0.01 | 3 |" in section


def test_the_verdict_and_the_comparisons_table_say_pairs_match_on_the_rate_only_where_drawn() -> None:
    drawn = render_markdown(analyse(tolerance_table(), reference="none"))
    assert drawn.count("dropout, optimizer, learning rate and seed") == 2  # the verdict, the table's note
    fixed = tolerance_table()
    plain = render_markdown(analyse(fixed[fixed["learning_rate"] == 0.1], reference="none"))
    assert "learning rate and seed" not in plain
    assert plain.count("dropout, optimizer and seed") == 2
