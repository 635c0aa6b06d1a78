"""What a Ray worker imports and keeps between trials."""

import gc
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
