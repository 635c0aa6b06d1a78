"""TrialConfig, its key and its params; run statuses."""

from __future__ import annotations

import pytest

from sweep.spec import parse_spec
from sweep.trial import (
    CONFIRM_SEED,
    ENDED,
    RAN,
    Phase,
    RunStatus,
    TrialConfig,
    TrialKey,
    config_key,
    trial_rate,
)

SPEC = parse_spec(
    {
        "name": "trial-test",
        "search": {"optimizer": [{"name": "sgd", "label": "fast", "learning_rate": 0.1, "momentum": 0.9}]},
    }
)


def test_params_round_trip_to_the_same_configuration() -> None:
    config = TrialConfig.from_tune(
        {"placement": "none", "dropout": 0.1, "optimizer": "fast", "seed": 3}, SPEC
    )
    params = config.to_params(SPEC)
    assert params["optimizer"] == "sgd" and params["optimizer.label"] == "fast"
    assert params["optimizer.momentum"] == "0.9" and all(isinstance(v, str) for v in params.values())
    assert TrialConfig.from_params(params) == config
    assert config.learning_rate == 0.1 and config.phase == ""


def test_the_key_survives_the_trip_through_params_and_tune() -> None:
    config = TrialConfig("after_dropout", 1 / 3, "fast", 7, 0.1)
    again = TrialConfig.from_params(config.to_params(SPEC))
    assert again.key == config.key == config_key(config.to_tune())
    assert config.key == TrialKey("after_dropout", 0.333333, "fast", 7, 0.1)
    assert config.key.dropout == config.key[1]


def test_per_placement_trials_know_their_phase() -> None:
    spec = parse_spec(
        {"name": "p", "strategy": {"tuning": "per_placement", "algorithm": "random", "num_samples": 2}}
    )
    tune = {"placement": "none", "dropout": 0.0, "optimizer": "adam"}
    assert TrialConfig.from_tune({**tune, "seed": 0}, spec).phase == Phase.TUNING
    assert TrialConfig.from_tune({**tune, "seed": CONFIRM_SEED}, spec).phase == Phase.CONFIRMATION
    assert TrialConfig.from_tune({**tune, "__trial_index__": 2}).seed == 2  # Optuna's blocks


def test_params_without_a_configuration_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="have no dropout, seed"):
        TrialConfig.from_params({"placement": "none", "optimizer": "adam"})
    with pytest.raises(ValueError, match="do not hold a trial configuration"):
        TrialConfig.from_params({"placement": "none", "optimizer": "adam", "dropout": "x", "seed": "1"})


def test_statuses_are_strings_and_the_two_meanings_of_ended_differ() -> None:
    assert RunStatus.FINISHED == "FINISHED" and f"{RunStatus.KILLED}" == "KILLED"
    assert {"FINISHED", "FAILED"} == RAN
    assert RAN | {"KILLED"} == ENDED


RANGED = parse_spec(
    {
        "name": "trial-test",
        "strategy": {"algorithm": "random", "num_samples": 2},
        "search": {
            "optimizer": [{"name": "sgd", "learning_rate": {"low": 0.01, "high": 1.0}, "momentum": 0.9}]
        },
    }
)


def test_a_drawn_rate_is_the_runs_optimizer_learning_rate_param_and_round_trips() -> None:
    tune = {"placement": "none", "dropout": 0.0, "optimizer": "sgd", "learning_rate": 0.3783, "seed": 2}
    config = TrialConfig.from_tune(tune, RANGED)
    params = config.to_params(RANGED)
    assert params["optimizer.learning_rate"] == "0.3783" and params["optimizer.momentum"] == "0.9"
    again = TrialConfig.from_params(params)
    assert again == config and again.learning_rate == 0.3783
    assert again.key == config_key(tune) == config_key(config.to_tune())
    assert config.key == TrialKey("none", 0.0, "sgd", 2, 0.3783)


def test_two_blocks_that_differ_only_in_their_rate_are_two_trials() -> None:
    tune = {"placement": "none", "dropout": 0.0, "optimizer": "sgd", "seed": 0}
    low = TrialConfig.from_tune({**tune, "learning_rate": 0.02}, RANGED)
    high = TrialConfig.from_tune({**tune, "learning_rate": 0.5}, RANGED)
    assert low.key != high.key and low.key[:4] == high.key[:4]


def test_a_tpe_suggestion_trains_with_its_own_optimizers_draw_rounded_as_random_search_rounds() -> None:
    suggestion = {"placement": "none", "dropout": 0.0, "optimizer": "sgd", "learning_rate.sgd": 0.123456789}
    assert trial_rate(suggestion, RANGED) == 0.1235
    assert TrialConfig.from_tune(suggestion, RANGED).learning_rate == 0.1235
    fixed = {"placement": "none", "dropout": 0.0, "optimizer": "fast"}
    assert trial_rate(fixed, SPEC) == 0.1  # a fixed rate: the spec's
