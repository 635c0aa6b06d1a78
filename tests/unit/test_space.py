import pytest

from sweep.space import (
    block_repeater,
    completion_plan,
    grid_configs,
    random_configs,
    tune_plan,
    tuning_plans,
)
from sweep.spec import SpecError, parse_spec
from sweep.trial import config_key, trial_seed


def spec(**parts):
    return parse_spec({"name": "t", **parts})


def test_grid_has_every_combination_once() -> None:
    s = spec(
        search={
            "placement": ["none", "after_activation"],
            "dropout": [0.0, 0.5],
            "seeds": 3,
            "optimizer": [{"name": "sgd"}, {"name": "adam"}],
        }
    )
    configs = grid_configs(s)
    assert len(configs) == s.trial_count == 24
    keys = {(c["placement"], c["dropout"], c["optimizer"], c["seed"]) for c in configs}
    assert len(keys) == 24


def test_grid_is_seed_major_so_early_trials_cover_every_placement() -> None:
    s = spec(search={"seeds": 2})
    first = grid_configs(s)[: s.configuration_count]
    assert {c["seed"] for c in first} == {0}
    assert {c["placement"] for c in first} == set(s.search.placement)


def test_random_search_is_blocked_reproducible_and_paired() -> None:
    s = spec(
        strategy={"algorithm": "random", "num_samples": 4, "search_seed": 7},
        search={"dropout": {"low": 0.0, "high": 0.6}, "seeds": 3},
    )
    a, b = random_configs(s), random_configs(s)
    assert a == b and len(a) == s.trial_count == 4 * 4 * 3
    blocks = {(c["dropout"], c["optimizer"]) for c in a}
    assert len(blocks) == 4
    for dropout, optimizer in blocks:  # every block: every placement x every seed
        mine = {
            (c["placement"], c["seed"]) for c in a if (c["dropout"], c["optimizer"]) == (dropout, optimizer)
        }
        assert mine == {(p, seed) for p in s.search.placement for seed in range(3)}
    assert all(0.0 <= c["dropout"] < 0.6 for c in a)
    other = parse_spec(
        {
            "name": "t",
            **s.model_dump(exclude={"name", "trial_count"}),
            "strategy": {"algorithm": "random", "num_samples": 4, "search_seed": 8},
        }
    )
    assert random_configs(other) != a  # the seed, not the call, decides the draws


def test_a_resumed_random_sweep_runs_exactly_what_is_missing() -> None:
    s = spec(strategy={"algorithm": "random", "num_samples": 2}, search={"dropout": [0.0, 0.3, 0.6]})
    configs = random_configs(s)
    done = frozenset(config_key(c) for c in configs[:5])
    plan = tune_plan(s, done=done)
    assert plan.num_samples == len(configs) - 5
    assert [config_key(p) for p in plan.search_alg._points_to_evaluate] == [
        config_key(c) for c in configs[5:]
    ]


def test_random_refuses_more_blocks_than_a_list_search_has() -> None:
    with pytest.raises(SpecError, match=r"strategy.num_samples: only 2 distinct"):
        spec(strategy={"algorithm": "random", "num_samples": 3}, search={"dropout": [0.0, 0.5]})


def test_trial_seed_reads_repeater_index() -> None:
    assert trial_seed({"seed": 2}) == 2
    assert trial_seed({"__trial_index__": 1}) == 1


def test_grid_plan_evaluates_each_point_once() -> None:
    s = spec(search={"seeds": 2})
    plan = tune_plan(s)
    assert plan.num_samples == s.trial_count
    assert type(plan.scheduler).__name__ == "FIFOScheduler"
    assert plan.metric == "val_accuracy" and plan.mode == "max"


def test_optuna_plan_runs_each_suggestion_as_a_block() -> None:
    s = spec(
        strategy={"algorithm": "optuna", "num_samples": 5},
        search={"placement": ["none", "after_activation"], "seeds": 3},
    )
    plan = tune_plan(s)
    assert plan.search_alg.repeat == 6 and plan.num_samples == 30 == s.trial_count
    assert "placement" not in plan.param_space  # Optuna tunes only what a block shares

    class Fixed:  # the searcher's side of the contract: one suggestion per block
        metric, mode = "val_accuracy", "max"

        def suggest(self, trial_id: str) -> dict:
            return {"dropout": 0.25, "optimizer": "adam"}

    repeater = block_repeater(Fixed(), ["none", "after_activation"], seeds=3)
    configs = [repeater.suggest(f"t{i}") for i in range(6)]
    assert [(c["placement"], c["seed"]) for c in configs] == [
        (p, seed) for seed in range(3) for p in ("none", "after_activation")
    ]
    assert {(c["dropout"], c["optimizer"]) for c in configs} == {(0.25, "adam")}


def test_a_resumed_optuna_sweep_completes_its_begun_blocks_first() -> None:
    s = spec(
        strategy={"algorithm": "optuna", "num_samples": 3},
        search={"placement": ["none", "after_activation"], "dropout": {"low": 0.0, "high": 0.5}, "seeds": 2},
    )
    done = frozenset(
        {("none", 0.1, "adam", 0), ("after_activation", 0.1, "adam", 0), ("none", 0.2, "adam", 1)}
    )
    completion = completion_plan(s, done)
    assert completion is not None
    missing = {config_key(p) for p in completion.search_alg._points_to_evaluate}
    assert missing == {
        ("none", 0.1, "adam", 1),
        ("after_activation", 0.1, "adam", 1),
        ("none", 0.2, "adam", 0),
        ("after_activation", 0.2, "adam", 0),
        ("after_activation", 0.2, "adam", 1),
    }
    assert tune_plan(s, done=done).num_samples == 1 * 4  # one block left to draw
    assert completion_plan(s, frozenset()) is None


def test_asha_stops_at_the_epoch_budget() -> None:
    s = spec(strategy={"scheduler": "asha", "grace_period": 3}, training={"epochs": 12})
    sched = tune_plan(s).scheduler
    assert type(sched).__name__ == "AsyncHyperBandScheduler"
    assert sched._max_t == 12


def test_per_placement_tuning_then_best_block_on_fresh_seeds() -> None:
    import pandas as pd

    from sweep.space import CONFIRM_SEED, best_blocks, confirmation_plan, tuning_plans
    from sweep.trial import Phase, TrialConfig

    s = spec(
        strategy={"algorithm": "random", "num_samples": 2, "tuning": "per_placement"},
        search={"placement": ["none", "after_activation"], "dropout": [0.0, 0.5], "seeds": 3},
    )
    assert s.trial_count == 2 * 2 + 2 * 3
    [tuning] = tuning_plans(s)
    points = tuning.search_alg._points_to_evaluate
    assert len(points) == 4 and {p["seed"] for p in points} == {0}
    trials = pd.DataFrame(
        [  # none is best at dropout 0.5, after_activation at 0.0; FAILED and re-runs never count
            {
                "placement": "none",
                "dropout": 0.0,
                "optimizer": "adam",
                "seed": 0,
                "status": "FINISHED",
                "final_val_accuracy": 0.7,
            },
            {
                "placement": "none",
                "dropout": 0.5,
                "optimizer": "adam",
                "seed": 0,
                "status": "FINISHED",
                "final_val_accuracy": 0.8,
            },
            {
                "placement": "after_activation",
                "dropout": 0.0,
                "optimizer": "adam",
                "seed": 0,
                "status": "FINISHED",
                "final_val_accuracy": 0.9,
            },
            {
                "placement": "after_activation",
                "dropout": 0.5,
                "optimizer": "adam",
                "seed": 0,
                "status": "FAILED",
                "final_val_accuracy": 0.99,
            },
            {
                "placement": "after_activation",
                "dropout": 0.5,
                "optimizer": "adam",
                "seed": CONFIRM_SEED,
                "status": "FINISHED",
                "final_val_accuracy": 1.0,
            },
        ]
    )
    best = best_blocks(trials, s)
    assert best == {
        "none": {"dropout": 0.5, "optimizer": "adam"},
        "after_activation": {"dropout": 0.0, "optimizer": "adam"},
    }
    plan = confirmation_plan(s, best)
    configs = plan.search_alg._points_to_evaluate
    assert plan.num_samples == 6 and all(
        TrialConfig.from_tune(c, s).phase == Phase.CONFIRMATION for c in configs
    )
    assert {(c["placement"], c["dropout"]) for c in configs} == {("none", 0.5), ("after_activation", 0.0)}
    assert sorted({c["seed"] for c in configs}) == [CONFIRM_SEED, CONFIRM_SEED + 1, CONFIRM_SEED + 2]
    done = frozenset({config_key(configs[0])})
    assert confirmation_plan(s, best, done).num_samples == 5  # a resume re-runs only what is missing


def test_per_placement_optuna_searches_each_placement_on_its_own() -> None:
    s = spec(
        strategy={"algorithm": "optuna", "num_samples": 3, "tuning": "per_placement"},
        search={"placement": ["none", "after_activation"], "dropout": {"low": 0.0, "high": 0.5}},
    )
    plans = tuning_plans(s, done=frozenset({("none", 0.1, "adam", 0)}))
    assert [p.param_space["placement"] for p in plans] == ["none", "after_activation"]
    assert [p.num_samples for p in plans] == [2, 3]


def test_per_placement_needs_a_search_that_draws() -> None:
    with pytest.raises(SpecError, match=r"strategy\.tuning: per_placement tuning needs random or optuna"):
        spec(strategy={"tuning": "per_placement"})
