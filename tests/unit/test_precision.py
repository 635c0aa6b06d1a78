"""Mixed precision (issue 22, item 5): trains on the CPU too, output in float32, policy per trial."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from sweep import parse_spec
from sweep.data import load_dataset
from sweep.spec import SweepSpec
from sweep.trainable import fit_trial, fresh_keras_state, prepare_trial
from sweep.training.precision import FULL, MIXED, float32_output, set_precision

CONFIG = {"placement": "after_dropout", "dropout": 0.5, "optimizer": "adam", "seed": 0}


def _spec(mixed: bool) -> SweepSpec:
    return parse_spec(
        {
            "name": "mixed",
            "dataset": {"n_samples": 200, "n_features": 6, "seed": 1, "test_split": 0.2},
            "model": {"hidden_units": [8, 8], "output_batchnorm": True},
            "search": {
                "placement": ["after_dropout"],
                "dropout": [0.5],
                "optimizer": [{"name": "adam", "learning_rate": 0.01}],
            },
            "training": {"epochs": 1, "batch_size": 32, "mixed_precision": mixed},
        }
    )


@pytest.fixture(autouse=True)
def _float32_after() -> Any:
    yield
    set_precision(False)  # the process's other tests build float32 models


def test_a_mixed_precision_trial_computes_in_float16_and_outputs_float32_with_finite_metrics() -> None:
    import keras

    spec = _spec(mixed=True)
    data = load_dataset(spec.dataset)
    history: list[dict[str, Any]] = []
    fit_trial(CONFIG, spec, data, history.append)
    (last,) = history  # one epoch
    measured = {k: v for k, v in last.items() if isinstance(v, float) and k != "bn_variance_shift_expected"}
    assert {"loss", "val_accuracy", "test_accuracy", "val_accuracy_bn_recalibrated"} <= measured.keys()
    assert all(math.isfinite(v) for v in measured.values()), measured

    model = prepare_trial(CONFIG, spec, data)
    assert keras.config.dtype_policy().name == MIXED
    assert model.get_layer("block1_mlp").compute_dtype == "float16"
    assert model.get_layer("block1_mlp").kernel.dtype == "float32"  # weights stay float32
    assert model.output.dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.predict(data.x_val[:4], verbose=0).dtype == np.float32


def test_a_normal_trial_after_a_mixed_one_in_the_same_process_is_float32_throughout() -> None:
    import keras

    data = load_dataset(_spec(mixed=True).dataset)
    prepare_trial(CONFIG, _spec(mixed=True), data)
    assert keras.config.dtype_policy().name == MIXED
    fresh_keras_state()  # a reused worker's reset alone drops the last trial's policy
    assert keras.config.dtype_policy().name == FULL
    set_precision(True)
    model = prepare_trial(CONFIG, _spec(mixed=False), data)
    assert keras.config.dtype_policy().name == FULL
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}
    assert not isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


def test_any_model_gets_a_float32_output_with_the_same_predictions() -> None:
    import keras

    fresh_keras_state()
    set_precision(True)
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(3,))
    own = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))  # a user's builder
    assert own.output.dtype == "float16"
    wrapped = float32_output(own)
    assert wrapped.output.dtype == "float32"
    assert wrapped.layers[-1].name == "output_float32"
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_array_equal(wrapped.predict(x, verbose=0), own.predict(x, verbose=0).astype(np.float32))
    assert float32_output(wrapped) is wrapped  # float32 already: unchanged


def test_a_model_of_two_outputs_is_refused_with_the_count() -> None:
    import keras

    fresh_keras_state()
    set_precision(True)
    inputs = keras.Input(shape=(3,))
    two = keras.Model(inputs, [keras.layers.Dense(2)(inputs), keras.layers.Dense(1)(inputs)])
    with pytest.raises(ValueError, match=r"one output is needed \(got 2\)"):
        float32_output(two)
