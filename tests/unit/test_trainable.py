"""What a Ray worker imports and keeps between trials."""

import gc
import math
import subprocess
import sys

import sweep
from sweep.trainable import fresh_keras_state


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
