import pytest

from sweep.space import (
    block_repeater,
    blocked_optuna_plan,
    explicit_plan,
    grid_configs,
    placement_optuna_plan,
    random_blocks,
    random_configs,
)
from sweep.spec import SpecError, parse_spec
from sweep.trial import trial_rate, trial_seed


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


def test_random_refuses_more_blocks_than_a_list_search_has() -> None:
    with pytest.raises(SpecError, match=r"strategy.num_samples: only 2 distinct"):
        spec(strategy={"algorithm": "random", "num_samples": 3}, search={"dropout": [0.0, 0.5]})


def test_trial_seed_reads_repeater_index() -> None:
    assert trial_seed({"seed": 2}) == 2
    assert trial_seed({"__trial_index__": 1}) == 1


def test_an_explicit_plan_evaluates_each_point_once() -> None:
    s = spec(search={"seeds": 2})
    plan = explicit_plan(s, grid_configs(s))
    assert plan.num_samples == s.trial_count
    assert plan.search_alg._points_to_evaluate == grid_configs(s)
    assert type(plan.scheduler).__name__ == "FIFOScheduler"
    assert plan.metric == "val_accuracy" and plan.mode == "max"


def test_optuna_plan_runs_each_suggestion_as_a_block() -> None:
    s = spec(
        strategy={"algorithm": "optuna", "num_samples": 5},
        search={"placement": ["none", "after_activation"], "seeds": 3},
    )
    plan = blocked_optuna_plan(s, seed=0, count=5)
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


def test_a_placement_optuna_plan_tunes_that_placement_alone_on_seed_0() -> None:
    s = spec(
        strategy={"algorithm": "optuna", "num_samples": 3, "tuning": "per_placement"},
        search={"placement": ["none", "after_activation"], "dropout": {"low": 0.0, "high": 0.5}},
    )
    plan = placement_optuna_plan(s, "after_activation", seed=7, num_samples=3)
    assert plan.param_space["placement"] == "after_activation" and plan.param_space["seed"] == 0
    assert plan.num_samples == 3 and type(plan.search_alg).__name__ == "OptunaSearch"


def test_asha_stops_at_the_epoch_budget() -> None:
    s = spec(strategy={"scheduler": "asha", "grace_period": 3}, training={"epochs": 12})
    sched = explicit_plan(s, grid_configs(s)).scheduler
    assert type(sched).__name__ == "AsyncHyperBandScheduler"
    assert sched._max_t == 12


def test_per_placement_needs_a_search_that_draws() -> None:
    with pytest.raises(SpecError, match=r"strategy\.tuning: per_placement tuning needs random or optuna"):
        spec(strategy={"tuning": "per_placement"})


def ranged(**strategy):
    return spec(
        strategy={"algorithm": "random", "num_samples": 5, "search_seed": 3, **strategy},
        search={
            "placement": ["none", "before_activation"],
            "dropout": [0.0],
            "seeds": 2,
            "optimizer": [{"name": "sgd", "learning_rate": {"low": 0.001, "high": 1.0}}, {"name": "adam"}],
        },
    )


def test_each_random_block_draws_one_rate_that_every_placement_and_seed_shares() -> None:
    s = ranged()
    configs = random_configs(s)
    assert len(configs) == s.trial_count == 5 * 2 * 2
    by_block: dict[tuple, set] = {}
    for c in configs:
        by_block.setdefault((c["dropout"], c["optimizer"], c["learning_rate"]), set()).add(
            (c["placement"], c["seed"])
        )
    assert len(by_block) == 5
    assert all(
        cells == {(p, seed) for p in ("none", "before_activation") for seed in (0, 1)}
        for cells in by_block.values()
    )
    sgd = sorted(rate for _, optimizer, rate in by_block if optimizer == "sgd")
    assert len(sgd) >= 2 and all(0.001 <= r <= 1.0 for r in sgd)
    assert all(rate == float(f"{rate:.4g}") for rate in sgd)  # 4 significant digits: survives the params
    assert {rate for _, optimizer, rate in by_block if optimizer == "adam"} <= {0.001}  # adam's fixed rate


def test_the_same_spec_draws_the_same_rates_so_a_resume_completes_its_blocks() -> None:
    assert random_configs(ranged()) == random_configs(ranged())
    assert random_configs(ranged(search_seed=4)) != random_configs(ranged())


def test_rates_are_drawn_log_uniformly_by_default() -> None:
    s = spec(
        strategy={"algorithm": "random", "num_samples": 400},
        search={
            "placement": ["none"],
            "seeds": 1,
            "dropout": [0.0],
            "optimizer": [{"name": "sgd", "learning_rate": {"low": 1e-4, "high": 1.0}}],
        },
    )
    rates = [b["learning_rate"] for b in random_blocks(s)]
    below = sum(r < 1e-2 for r in rates) / len(rates)
    assert 0.4 < below < 0.6  # half the decades lie below 0.01; a linear draw puts 1% there


def test_a_spec_without_ranges_draws_the_blocks_it_always_drew() -> None:
    s = spec(
        strategy={"algorithm": "random", "num_samples": 3, "search_seed": 5},
        search={"dropout": {"low": 0.0, "high": 0.5}, "optimizer": [{"name": "adam"}, {"name": "sgd"}]},
    )
    # Drawn by the code before learning-rate ranges existed: resumed sweeps of that code keep their blocks.
    assert [(b["dropout"], b["optimizer"]) for b in random_blocks(s)] == [
        (0.4025, "adam"),
        (0.2577, "sgd"),
        (0.1429, "sgd"),
    ]


def test_tpe_draws_each_ranged_optimizers_rate_once_per_block() -> None:
    s = ranged(algorithm="optuna", num_samples=3)
    plan = blocked_optuna_plan(s, seed=0, count=3)
    assert (
        plan.param_space["learning_rate.sgd"].sampler is not None
        and "learning_rate.adam" not in plan.param_space
    )
    searcher = plan.search_alg
    searcher.set_search_properties(plan.metric, plan.mode, plan.param_space)
    configs = [searcher.suggest(f"t{i}") for i in range(3 * plan.search_alg.repeat)]
    blocks = [configs[i : i + 4] for i in range(0, len(configs), 4)]
    for block in blocks:
        rates = {trial_rate(c, s) for c in block}
        assert len(rates) == 1  # every placement and seed of a block: one rate
        (rate,) = rates
        if block[0]["optimizer"] == "sgd":
            assert 0.001 <= rate <= 1.0 and rate == float(f"{rate:.4g}")
        else:
            assert rate == 0.001
