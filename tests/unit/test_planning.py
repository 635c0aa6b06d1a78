"""Planners: given the trials so far, what runs next (pure: no Ray cluster, no MLflow)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from sweep.planning import (
    AdaptivePlanner,
    GridPlanner,
    OptunaPlanner,
    PerPlacementPlanner,
    RandomPlanner,
    planner_for,
)
from sweep.space import TunePlan, grid_configs, random_configs
from sweep.spec import parse_spec
from sweep.trial import CONFIRM_SEED, TrialKey, config_key, trial_seed

PAIR = ["before_activation", "none"]


def spec(**parts: Any):
    return parse_spec({"name": "t", **parts})


def unread() -> pd.DataFrame:
    raise AssertionError("this planner must not read the trial table")


def points(plan: TunePlan | None) -> list[dict[str, Any]]:
    assert plan is not None
    return list(plan.search_alg._points_to_evaluate)


def keys(plan: TunePlan | None) -> list[TrialKey]:
    return [config_key(p) for p in points(plan)]


def table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A trial table (sweep.results.trial_table's columns that planners read)."""
    columns = ["placement", "dropout", "optimizer", "seed", "status", "final_val_accuracy"]
    return pd.DataFrame(rows, columns=columns)


def row(config: dict[str, Any], accuracy: float, status: str = "FINISHED") -> dict[str, Any]:
    return {**config, "status": status, "final_val_accuracy": accuracy}


def test_grid_runs_every_configuration_once_then_is_done() -> None:
    s = spec(search={"seeds": 2})
    planner = GridPlanner(s)
    assert planner.expected == s.trial_count
    assert keys(planner.next_plan(unread)) == [config_key(c) for c in grid_configs(s)]
    assert planner.next_plan(unread) is None
    assert planner.expected == s.trial_count  # the attempt's total, not what is left to hand out


def test_a_resumed_grid_runs_only_what_did_not_end_and_nothing_when_all_did() -> None:
    s = spec(search={"seeds": 2})
    every = [config_key(c) for c in grid_configs(s)]
    planner = GridPlanner(s, frozenset(every[:5]))
    assert planner.expected == len(every) - 5
    assert keys(planner.next_plan(unread)) == every[5:]
    finished = GridPlanner(s, frozenset(every))
    assert finished.expected == 0 and finished.next_plan(unread) is None


def test_a_resumed_random_sweep_runs_exactly_what_is_missing() -> None:
    s = spec(strategy={"algorithm": "random", "num_samples": 2}, search={"dropout": [0.0, 0.3, 0.6]})
    configs = random_configs(s)
    planner = RandomPlanner(s, frozenset(config_key(c) for c in configs[:5]))
    assert planner.expected == len(configs) - 5
    assert keys(planner.next_plan(unread)) == [config_key(c) for c in configs[5:]]
    assert planner.next_plan(unread) is None


def test_optuna_runs_its_blocks_in_one_search() -> None:
    s = spec(strategy={"algorithm": "optuna", "num_samples": 5}, search={"placement": PAIR, "seeds": 3})
    planner = OptunaPlanner(s)
    plan = planner.next_plan(unread)
    assert plan is not None and plan.num_samples == planner.expected == s.trial_count == 30
    assert plan.search_alg.repeat == 6
    assert planner.next_plan(unread) is None


def test_a_resumed_optuna_sweep_completes_its_begun_blocks_first() -> None:
    s = spec(
        strategy={"algorithm": "optuna", "num_samples": 3},
        search={"placement": ["none", "after_activation"], "dropout": {"low": 0.0, "high": 0.5}, "seeds": 2},
    )
    done = frozenset(
        {
            TrialKey("none", 0.1, "adam", 0, 0.001),
            TrialKey("after_activation", 0.1, "adam", 0, 0.001),
            TrialKey("none", 0.2, "adam", 1, 0.001),
        }
    )
    planner = OptunaPlanner(s, done)
    assert planner.expected == 5 + 1 * 4
    assert set(keys(planner.next_plan(unread))) == {
        ("none", 0.1, "adam", 1, 0.001),
        ("after_activation", 0.1, "adam", 1, 0.001),
        ("none", 0.2, "adam", 0, 0.001),
        ("after_activation", 0.2, "adam", 0, 0.001),
        ("after_activation", 0.2, "adam", 1, 0.001),
    }
    drawn = planner.next_plan(unread)
    assert drawn is not None and drawn.num_samples == 1 * 4  # one block left to draw
    assert planner.next_plan(unread) is None


def per_placement_random():
    return spec(
        strategy={"algorithm": "random", "num_samples": 2, "tuning": "per_placement"},
        search={"placement": ["none", "after_activation"], "dropout": [0.0, 0.5], "seeds": 3},
    )


def tuned() -> pd.DataFrame:
    """none is best at dropout 0.5, after_activation at 0.0; a FAILED trial and re-runs never count."""
    return table(
        [
            row({"placement": "none", "dropout": 0.0, "optimizer": "adam", "seed": 0}, 0.7),
            row({"placement": "none", "dropout": 0.5, "optimizer": "adam", "seed": 0}, 0.8),
            row({"placement": "after_activation", "dropout": 0.0, "optimizer": "adam", "seed": 0}, 0.9),
            row(
                {"placement": "after_activation", "dropout": 0.5, "optimizer": "adam", "seed": 0},
                0.99,
                "FAILED",
            ),
            row(
                {"placement": "after_activation", "dropout": 0.5, "optimizer": "adam", "seed": CONFIRM_SEED},
                1.0,
            ),
        ]
    )


def test_per_placement_tunes_then_reruns_each_best_block_on_fresh_seeds() -> None:
    s = per_placement_random()
    planner = PerPlacementPlanner(s)
    assert planner.expected == s.trial_count == 2 * 2 + 2 * 3
    tuning = points(planner.next_plan(unread))
    assert len(tuning) == 4 and {p["seed"] for p in tuning} == {0}
    reads: list[int] = []

    def trials() -> pd.DataFrame:
        reads.append(1)
        return tuned()

    confirmation = points(planner.next_plan(trials))
    assert len(reads) == 1  # the tuning results, read once they are all in
    assert len(confirmation) == 6 and all(trial_seed(c) >= CONFIRM_SEED for c in confirmation)
    assert {(c["placement"], c["dropout"]) for c in confirmation} == {
        ("none", 0.5),
        ("after_activation", 0.0),
    }
    assert sorted({c["seed"] for c in confirmation}) == [CONFIRM_SEED, CONFIRM_SEED + 1, CONFIRM_SEED + 2]
    assert planner.next_plan(trials) is None and len(reads) == 1


def test_a_resumed_per_placement_sweep_reruns_only_what_is_missing() -> None:
    s = per_placement_random()
    tuning = [config_key(p) for p in points(PerPlacementPlanner(s).next_plan(unread))]
    done = frozenset([*tuning, TrialKey("none", 0.5, "adam", CONFIRM_SEED, 0.001)])
    planner = PerPlacementPlanner(s, done)
    assert planner.expected == 5  # tuning is done: the confirmations left
    confirmation = keys(planner.next_plan(lambda: tuned()))
    assert len(confirmation) == 5 and ("none", 0.5, "adam", CONFIRM_SEED, 0.001) not in confirmation
    every = frozenset([*done, *confirmation])
    finished = PerPlacementPlanner(s, every)
    assert finished.expected == 0 and finished.next_plan(unread) is None


def test_a_placement_without_a_finished_tuning_trial_is_not_rerun() -> None:
    s = per_placement_random()
    planner = PerPlacementPlanner(s)
    planner.next_plan(unread)
    only_none = tuned()[lambda t: t.placement == "none"]
    assert {c["placement"] for c in points(planner.next_plan(lambda: only_none))} == {"none"}


def test_per_placement_optuna_searches_each_placement_on_its_own() -> None:
    s = spec(
        strategy={"algorithm": "optuna", "num_samples": 3, "tuning": "per_placement"},
        search={"placement": ["none", "after_activation"], "dropout": {"low": 0.0, "high": 0.5}},
    )
    planner = PerPlacementPlanner(s, frozenset({TrialKey("none", 0.1, "adam", 0, 0.001)}))
    assert planner.expected == 2 + 3 + 2 * 3
    first, second = planner.next_plan(unread), planner.next_plan(unread)
    assert first is not None and second is not None
    assert [p.param_space["placement"] for p in (first, second)] == ["none", "after_activation"]
    assert [p.num_samples for p in (first, second)] == [2, 3]


def adaptive_spec(max_seeds: int = 4):
    return spec(search={"placement": PAIR, "dropout": [0.0], "seeds": {"min": 2, "max": max_seeds}})


def ran(seeds: range, gap: float, noise: list[float]) -> list[dict[str, Any]]:
    """Finished trials of both placements: before_activation `gap` above none, plus noise by seed."""
    return [
        row(
            {"placement": p, "dropout": 0.0, "optimizer": "adam", "seed": s},
            0.8 + noise[s] + (gap if i == 0 else 0),
        )
        for s in seeds
        for i, p in enumerate(PAIR)
    ]


def test_adaptive_first_round_runs_min_seeds_and_records_the_look() -> None:
    s = adaptive_spec()
    looks: list[tuple[dict[str, str], dict[str, int]]] = []
    planner = AdaptivePlanner(s, lambda calls, counts: looks.append((calls, counts)))
    assert planner.expected == 0  # nothing asked for yet
    first = keys(planner.next_plan(lambda: table([])))
    assert sorted(first) == sorted((p, 0.0, "adam", seed, 0.001) for p in PAIR for seed in (0, 1))
    assert planner.expected == 4
    assert looks == [({}, {"adaptive.trials_run": 0, "adaptive.trials_saved": 8})]


def test_adaptive_stops_once_every_comparison_is_decided() -> None:
    s = adaptive_spec()
    looks: list[tuple[dict[str, str], dict[str, int]]] = []
    planner = AdaptivePlanner(s, lambda calls, counts: looks.append((calls, counts)))
    planner.next_plan(lambda: table([]))
    planner.next_plan(lambda: table(ran(range(2), gap=0.1, noise=[0.0, 0.001])))  # 2 seeds: no call yet
    gaps = [0.10, 0.11, 0.09]  # about +10 points on each of 3 seeds (not all alike: some spread)
    clear = table(
        [
            row(
                {"placement": p, "dropout": 0.0, "optimizer": "adam", "seed": s},
                0.8 + (gaps[s] if i == 0 else 0),
            )
            for s in range(3)
            for i, p in enumerate(PAIR)
        ]
    )
    assert planner.next_plan(lambda: clear) is None
    assert planner.expected == 6  # min 2 seeds, then one more: no call from fewer than 3 seeds
    calls, counts = looks[-1]
    call = json.loads(calls["adaptive.before_activation.vs.none"])  # calls are data, not prose
    assert (call["outcome"], call["look"], call["seeds"]) == ("better", 2, 3)
    assert counts == {"adaptive.trials_run": 6, "adaptive.trials_saved": 2}


def test_adaptive_adds_seeds_while_undecided_until_max() -> None:
    s = adaptive_spec(max_seeds=4)
    planner = AdaptivePlanner(s)
    noise = [0.0, 0.05, -0.04, 0.06]
    undecided = [0.02, -0.03, 0.04, -0.05]  # the sign flips: no call

    def trials_at(seeds: int) -> pd.DataFrame:
        return table(
            [
                row({"placement": p, "dropout": 0.0, "optimizer": "adam", "seed": k}, 0.8 + noise[k] + gap)
                for k in range(seeds)
                for p, gap in zip(PAIR, (undecided[k], 0.0), strict=True)
            ]
        )

    assert planner.next_plan(lambda: trials_at(0)) is not None
    for seed in (2, 3):  # step 1: one more seed for both placements of the undecided pair
        assert sorted(keys(planner.next_plan(lambda n=seed: trials_at(n)))) == [
            (p, 0.0, "adam", seed, 0.001) for p in sorted(PAIR)
        ]
    assert planner.expected == 4 + 2 + 2
    assert planner.next_plan(lambda: trials_at(4)) is None  # max seeds reached


def test_a_resumed_adaptive_sweep_runs_the_rest_of_its_round() -> None:
    s = adaptive_spec()
    one_trial = table(ran(range(1), gap=0.0, noise=[0.0])[:1])  # the driver died after one trial
    assert len(keys(AdaptivePlanner(s).next_plan(lambda: one_trial))) == 3


@pytest.mark.parametrize(
    ("parts", "kind"),
    [
        ({}, GridPlanner),
        ({"strategy": {"algorithm": "random", "num_samples": 1}}, RandomPlanner),
        ({"strategy": {"algorithm": "optuna", "num_samples": 1}}, OptunaPlanner),
        (
            {"strategy": {"algorithm": "random", "num_samples": 1, "tuning": "per_placement"}},
            PerPlacementPlanner,
        ),
        ({"search": {"seeds": {"min": 2, "max": 3}}}, AdaptivePlanner),
    ],
)
def test_each_spec_gets_the_planner_of_its_search(parts: dict[str, Any], kind: type) -> None:
    assert type(planner_for(spec(**parts))) is kind


RANGED_SEARCH = {
    "placement": ["none", "before_activation"],
    "dropout": [0.0],
    "seeds": 2,
    "optimizer": [{"name": "sgd", "learning_rate": {"low": 0.01, "high": 1.0}}],
}


def test_per_placement_tuning_reruns_each_placement_at_its_own_best_rate() -> None:
    s = spec(
        strategy={"algorithm": "random", "num_samples": 3, "tuning": "per_placement"}, search=RANGED_SEARCH
    )
    planner = PerPlacementPlanner(s)
    tuning = points(planner.next_plan(unread))
    rates = sorted({p["learning_rate"] for p in tuning})
    assert len(rates) == 3 and len(tuning) == 6  # the same 3 drawn rates for both placements
    # BN does best at the highest rate, none at the lowest: each re-runs at its own.
    best = {"before_activation": rates[-1], "none": rates[0]}
    accuracy = [0.9 if p["learning_rate"] == best[p["placement"]] else 0.7 for p in tuning]
    results = table([row(p, a) for p, a in zip(tuning, accuracy, strict=True)])
    results["learning_rate"] = [p["learning_rate"] for p in tuning]  # as sweep.results records it
    confirmation = points(planner.next_plan(lambda: results))
    assert {(c["placement"], c["learning_rate"]) for c in confirmation} == set(best.items())
    assert len(confirmation) == 2 * 2 and all(c["seed"] >= CONFIRM_SEED for c in confirmation)


def test_per_placement_optuna_draws_each_placements_rate_in_its_own_search() -> None:
    s = spec(
        strategy={"algorithm": "optuna", "num_samples": 2, "tuning": "per_placement"}, search=RANGED_SEARCH
    )
    planner = PerPlacementPlanner(s)
    first, second = planner.next_plan(unread), planner.next_plan(unread)
    assert first is not None and second is not None
    for plan in (first, second):
        assert "learning_rate.sgd" in plan.param_space  # each placement's TPE search draws the rate
    assert first.search_alg is not second.search_alg


def test_a_resumed_random_sweep_with_a_rate_range_runs_the_same_blocks_missing_trials() -> None:
    s = spec(strategy={"algorithm": "random", "num_samples": 3, "search_seed": 9}, search=RANGED_SEARCH)
    every = [config_key(c) for c in random_configs(s)]
    # What MLflow holds for the trials that ran: their keys read back from the runs' params.
    ran = frozenset(every[:5])
    resumed = keys(RandomPlanner(s, ran).next_plan(unread))
    assert resumed == every[5:]  # the same drawn rates: the begun blocks are completed, none redrawn
    assert {k.learning_rate for k in resumed} <= {k.learning_rate for k in every}
