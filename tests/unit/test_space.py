from collections import Counter

from sweep.space import grid_configs, random_configs, trial_seed, tune_plan
from sweep.spec import parse_spec


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


def test_random_draws_are_reproducible_and_paired_across_seeds() -> None:
    s = spec(
        strategy={"algorithm": "random", "num_samples": 4},
        search={"dropout": {"low": 0.0, "high": 0.6}, "seeds": 3},
    )
    a, b = random_configs(s, 7), random_configs(s, 7)
    assert a == b and len(a) == 12
    per_config = Counter((c["placement"], c["dropout"], c["optimizer"]) for c in a)
    assert set(per_config.values()) == {3}
    assert all(0.0 <= c["dropout"] < 0.6 for c in a)


def test_trial_seed_reads_repeater_index() -> None:
    assert trial_seed({"seed": 2}) == 2
    assert trial_seed({"__trial_index__": 1}) == 1


def test_grid_plan_evaluates_each_point_once() -> None:
    s = spec(search={"seeds": 2})
    plan = tune_plan(s)
    assert plan.num_samples == s.trial_count
    assert type(plan.scheduler).__name__ == "FIFOScheduler"
    assert plan.metric == "val_accuracy" and plan.mode == "max"


def test_optuna_plan_repeats_each_suggestion_per_seed() -> None:
    s = spec(strategy={"algorithm": "optuna", "num_samples": 5}, search={"seeds": 3})
    plan = tune_plan(s)
    assert type(plan.search_alg).__name__ == "Repeater"
    assert plan.search_alg.repeat == 3
    assert plan.num_samples == 15


def test_asha_stops_at_the_epoch_budget() -> None:
    s = spec(strategy={"scheduler": "asha", "grace_period": 3}, training={"epochs": 12})
    sched = tune_plan(s).scheduler
    assert type(sched).__name__ == "AsyncHyperBandScheduler"
    assert sched._max_t == 12
