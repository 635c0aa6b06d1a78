"""TrialConfig, its key and its params; run statuses."""

from __future__ import annotations

import pytest

from sweep.spec import parse_spec
from sweep.trial import CONFIRM_SEED, ENDED, RAN, Phase, RunStatus, TrialConfig, TrialKey, config_key

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
