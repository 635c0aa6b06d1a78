"""What a Ray worker imports and keeps between trials."""

from __future__ import annotations

import gc
import math
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

import sweep
from sweep.trainable import fresh_keras_state

if TYPE_CHECKING:
    from sweep.data import Dataset
    from sweep.spec import SweepSpec

CONFIG = {"placement": "after_dropout", "dropout": 0.5, "optimizer": "adam", "seed": 0}


def _run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_worker_import_of_the_trainable_leaves_out_driver_only_libraries() -> None:
    # A worker unpickles sweep.trainable.train_trial; `import sweep` must not drag in the driver's
    # MLflow, plotting and statistics (about 3 s of a worker's start on 2 cores).
    loaded = _run_python(
        "import sys, sweep.trainable; "
        "print(','.join(m for m in ('mlflow', 'matplotlib', 'scipy', 'pandas', 'sweep.runner') "
        "if m in sys.modules))"
    )
    assert loaded == ""


def test_public_api_resolves_every_exported_name() -> None:
    assert set(sweep.__all__) == set(sweep._EXPORTS)
    for name in sweep.__all__:
        assert getattr(sweep, name) is not None, name
    assert "run_sweep" in dir(sweep)


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        sweep.no_such_thing  # noqa: B018
    except AttributeError as err:
        assert "no_such_thing" in str(err)
    else:
        raise AssertionError("expected AttributeError")


def test_import_keras_skips_its_unused_extras_yet_they_stay_importable() -> None:
    out = _run_python(
        "import sys\n"
        "from sweep.trainable import import_keras\n"
        "keras = import_keras()\n"
        "print(keras.__version__ is not None, 'matplotlib' in sys.modules, 'sklearn' in sys.modules)\n"
        "import matplotlib, sklearn\n"
        "print(matplotlib.__version__ is not None, sklearn.__version__ is not None)\n"
    )
    assert out.splitlines() == ["True False False", "True True"]


def test_fresh_keras_state_freezes_survivors_and_resets_layer_names() -> None:
    import keras

    gc.unfreeze()
    keras.layers.Dense(2)
    fresh_keras_state()
    assert gc.get_freeze_count() > 0  # this process's long-lived objects are out of the collector's way
    second = keras.layers.Dense(2)
    assert second.name == "dense"  # Keras' global state (name counters) was cleared
    gc.unfreeze()


def test_gpu_set_up_is_a_no_op_without_gpus_before_and_after_the_runtime_starts() -> None:
    # A fresh process: the set-up runs once per process, and only before TensorFlow's runtime starts.
    out = _run_python(
        "import sys\n"
        "from sweep.training import keras_setup\n"
        "keras_setup.configure_tensorflow(1)  # a worker's first call: Keras still imported lean\n"
        "print(keras_setup.training_device(), 'matplotlib' in sys.modules)\n"
        "import tensorflow as tf\n"
        "tf.constant(1.0) + 1  # the runtime starts: devices and pools are fixed from here\n"
        "keras_setup._configured_gpus, keras_setup._configured_threads = False, None\n"
        "keras_setup.configure_tensorflow(2, use_gpus=False)\n"
        "print(keras_setup.training_device(), tf.config.threading.get_intra_op_parallelism_threads())\n"
    )
    assert out.splitlines()[-2:] == ["cpu False", "cpu 1"]


def test_compile_for_training_traces_the_train_step_once_with_identical_results() -> None:
    import keras

    from sweep import parse_spec
    from sweep.data import load_dataset
    from sweep.models import build_model, build_optimizer
    from sweep.trainable import compile_for_training

    spec = parse_spec(
        {
            "name": "trace-once",
            "dataset": {"n_samples": 200, "n_features": 6, "seed": 2},
            "model": {"hidden_units": [8]},
            "search": {
                "placement": ["after_dropout"],
                "dropout": [0.25],
                "optimizer": [{"name": "adam", "learning_rate": 0.01}],
            },
            "training": {"epochs": 2, "batch_size": 16},
        }
    )
    data = load_dataset(spec.dataset)

    def train(prebuilt: bool) -> tuple[int, dict]:
        fresh_keras_state()
        keras.utils.set_random_seed(3)
        model = build_model(spec.model, "after_dropout", 0.25, data.input_shape, data.n_classes)
        optimizer = build_optimizer(spec.search.optimizers["adam"])
        if prebuilt:
            compile_for_training(model, spec, optimizer, len(data.x_train))
        else:  # Keras' own way: the optimizer's variables appear during the first trace
            model.compile(
                optimizer=optimizer,
                loss=spec.training.loss,
                metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
                steps_per_execution=math.ceil(len(data.x_train) / 16),  # as the spec's `epoch`
            )
        traces = []
        step = model.train_step

        def counted(batch):  # runs once per trace, not per batch
            traces.append(1)
            return step(batch)

        model.train_step = counted
        history = model.fit(
            data.x_train,
            data.y_train,
            batch_size=16,
            epochs=2,
            validation_data=(data.x_val, data.y_val),
            verbose=0,
        )
        return len(traces), history.history

    try:
        once, ours = train(prebuilt=True)
        twice, keras_way = train(prebuilt=False)
    finally:
        gc.unfreeze()
    assert (once, twice) == (1, 2)
    assert ours == keras_way


# --- the test split and BN without dropout (issue 15, items 4 and 7) ----------------------------


def _spec(
    placement: str = "after_dropout", dropout: float = 0.5, scheduler: str = "fifo", **dataset: object
) -> SweepSpec:
    from sweep import parse_spec

    return parse_spec(
        {
            "name": "held-out",
            "dataset": {"n_samples": 300, "n_features": 6, "seed": 1, **dataset},
            "model": {"hidden_units": [16, 16]},
            "search": {
                "placement": [placement],
                "dropout": [dropout],
                "optimizer": [{"name": "adam", "learning_rate": 0.01}],
            },
            "training": {"epochs": 3, "batch_size": 32},
            "strategy": {"scheduler": scheduler},
        }
    )


def _trained(placement: str, dropout: float, epochs: int = 3, batch_size: int = 32) -> tuple[Any, Dataset]:
    """A model trained with `placement`, and its data."""
    import keras

    from sweep.data import load_dataset
    from sweep.models import build_model

    spec = _spec(placement, dropout)
    data = load_dataset(spec.dataset)
    fresh_keras_state()
    keras.utils.set_random_seed(0)
    model = build_model(spec.model, placement, dropout, data.input_shape, data.n_classes)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(data.x_train, data.y_train, batch_size=batch_size, epochs=epochs, verbose=0)
    return model, data


def _bn_inputs(model: Any, x: np.ndarray) -> list[np.ndarray]:
    """What each BN layer sees in inference mode (dropout off), one row per value of a channel."""
    import keras

    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    probe = keras.Model(model.input, [layer.input for layer in layers])
    return [np.asarray(v, dtype=np.float64) for v in probe(x, training=False)]


def test_a_trial_with_a_test_split_reports_the_final_model_on_it_and_the_run_keeps_it(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from sweep.data import load_dataset
    from sweep.results import find_sweep, trial_table
    from sweep.tracking import SweepTracker, local_tracking_uri
    from sweep.trainable import fit_trial

    spec = _spec(test_split=0.2)
    data = load_dataset(spec.dataset)
    assert data.x_test is not None and data.y_test is not None
    history: list[dict[str, Any]] = []
    fit_trial(CONFIG, spec, data, history.append)
    last = history[-1]
    assert 0 <= last["test_accuracy"] <= 1 and last["test_loss"] > 0
    assert not any("test_accuracy" in r for r in history[:-1])  # FIFO: the last epoch is the final one
    asha: list[dict[str, Any]] = []
    fit_trial(CONFIG, _spec(scheduler="asha", test_split=0.2), data, asha.append)
    assert all("test_accuracy" in r for r in asha)  # ASHA may stop it after any epoch
    assert asha[-1]["test_accuracy"] == last["test_accuracy"]  # the same training
    assert {"val_accuracy_bn_recalibrated", "test_accuracy_bn_recalibrated"} <= last.keys()

    uri = local_tracking_uri(tmp_path)
    tracker = SweepTracker(uri, spec, "held-out-1", tmp_path)
    tracker.start_sweep()
    tracker.start_trial("t0", CONFIG)
    tracker.end_trial("t0", history)
    client = MlflowClient(uri)
    row = trial_table(client, find_sweep(client, "held-out-1", with_spec=False)).iloc[0]
    assert row["final_test_accuracy"] == pytest.approx(last["test_accuracy"])
    assert row["final_test_loss"] == pytest.approx(last["test_loss"])
    assert row["final_val_accuracy_bn_recalibrated"] == pytest.approx(last["val_accuracy_bn_recalibrated"])
    assert row["final_test_accuracy_bn_recalibrated"] == pytest.approx(last["test_accuracy_bn_recalibrated"])
    assert row["bn_variance_shift_expected"] == pytest.approx(last["bn_variance_shift_expected"])
    assert "test_accuracy" not in client.get_run(row["run_id"]).data.metrics  # no per-epoch curve


def test_without_a_test_split_a_trial_reports_no_test_metrics() -> None:
    from sweep.data import load_dataset
    from sweep.trainable import fit_trial

    spec = _spec(placement="none")
    history: list[dict[str, Any]] = []
    fit_trial({**CONFIG, "placement": "none"}, spec, load_dataset(spec.dataset), history.append)
    assert not any(k.startswith("test_") or "bn_" in k for r in history for k in r)


def test_evaluate_matches_keras_evaluate() -> None:
    from sweep.trainable import evaluate

    model, data = _trained("after_dropout", 0.5)
    model.compile(loss="categorical_crossentropy", metrics=["categorical_accuracy"])
    loss, accuracy = model.evaluate(data.x_val, data.y_val, verbose=0)
    ours = evaluate(model, data.x_val, data.y_val, "categorical_crossentropy")
    assert ours == pytest.approx((loss, accuracy), rel=1e-5)


def test_recalibration_sets_bn_statistics_to_the_inputs_without_dropout_and_restores_them() -> None:
    from sweep.trainable import recalibrated_bn

    model, data = _trained("after_dropout", 0.5)
    layers = [layer for layer in model.layers if "bn" in layer.name]
    before = [np.array(layer.moving_variance) for layer in layers]
    with recalibrated_bn(model, data.x_train):
        seen = _bn_inputs(model, data.x_train)  # with the recalibrated layers before each one
        for layer, values in zip(layers, seen, strict=True):
            np.testing.assert_allclose(layer.moving_mean, values.mean(axis=0), rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(layer.moving_variance, values.var(axis=0), rtol=1e-4, atol=1e-6)
        recalibrated = [np.array(layer.moving_variance) for layer in layers]
    # dropout 0.5 in front of BN: training-time statistics overstated the variance (Li et al.)
    assert np.median(before[0] / np.maximum(recalibrated[0], 1e-6)) > 1.3
    for layer, variance in zip(layers, before, strict=True):
        np.testing.assert_array_equal(layer.moving_variance, variance)


def test_variance_shift_matches_li_et_al_behind_dropout_and_is_absent_without_bn() -> None:
    from sweep.trainable import bn_variance_shift

    # 600 steps: BN's moving averages (momentum 0.99) keep 0.2% of their initial values (after
    # 24 steps 79%: the lag alone tripled the measured ratio)
    model, data = _trained("after_dropout", 0.5, epochs=20, batch_size=8)
    measured, expected = bn_variance_shift(model, data.x_val)
    assert measured is not None and expected is not None
    # ReLU outputs are not centred: Li et al.'s ratio exceeds 1/keep = 2
    assert expected > 2
    assert 0.9 < measured / expected < 1.11, (measured, expected)
    after, no_prediction = bn_variance_shift(_trained("after_activation", 0.5)[0], data.x_val)
    assert after is not None and no_prediction is None  # no Dropout feeds its BN directly
    assert bn_variance_shift(_trained("none", 0.5)[0], data.x_val) == (None, None)


def test_a_channel_of_near_zero_test_variance_does_not_blow_up_the_ratio() -> None:
    from sweep.trainable import bn_variance_shift

    model, data = _trained("after_dropout", 0.5)
    measured, _ = bn_variance_shift(model, data.x_val)
    dense, bn = model.get_layer("block1_mlp"), model.get_layer("block1_bn")
    channel = int(np.argmax(_bn_inputs(model, data.x_val)[0].var(axis=0)))
    kernel, bias = dense.get_weights()
    kernel[:, channel] *= 0.003  # ReLU is positively homogeneous: that channel's variance x 9e-6
    bias[channel] *= 0.003
    dense.set_weights([kernel, bias])  # BN's moving variance still has the training-time value
    test_var = _bn_inputs(model, data.x_val)[0].var(axis=0)
    assert 1e-6 < test_var[channel] < 1e-4  # above the old absolute cut-off
    ratios = np.asarray(bn.moving_variance) / np.maximum(test_var, 1e-12)
    plain_mean = float(np.mean(ratios[test_var > 1e-6]))  # the old per-channel mean
    robust, _ = bn_variance_shift(model, data.x_val)
    assert measured is not None and robust is not None
    assert plain_mean > 1000
    assert robust == pytest.approx(measured, rel=0.1)  # the median over the others
