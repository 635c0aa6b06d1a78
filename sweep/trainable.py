"""What runs on a Ray worker for one trial: build, train, report every epoch."""

from __future__ import annotations

import gc
import json
import math
import os
import resource
import socket
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from sweep.data import Dataset
from sweep.space import trial_seed
from sweep.spec import SweepSpec

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


class TrialDiverged(RuntimeError):
    """The loss stopped being a finite number."""


_configured_threads: int | None = None

# Keras imports these when installed, for its plotting helpers and scikit-learn wrappers, which a
# trial never uses; they are half of a worker's 5 s Keras import on 2 cores (~1.4 s).
_KERAS_EXTRAS_UNUSED_IN_TRIALS = ("matplotlib", "sklearn")


def import_keras() -> Any:
    """`import keras` for a trial: the first time in a process, without Keras' optional extras.

    The extras are hidden from Keras only while it imports (the pinned Keras guards those imports
    with `except ImportError`; tests/unit/test_trainable.py checks it still does); the process can
    import them normally afterwards.
    """
    if "keras" in sys.modules:
        return sys.modules["keras"]
    hidden = [name for name in _KERAS_EXTRAS_UNUSED_IN_TRIALS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` raise ImportError
    try:
        import keras
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]
    return keras


def configure_tensorflow(cpus: float) -> None:
    """Match TensorFlow's thread pools to the trial's CPUs, once per worker process."""
    global _configured_threads
    threads = max(1, int(cpus))
    if _configured_threads == threads:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        for gpu in tf.config.list_physical_devices("GPU"):
            # Fractional gpus_per_trial share one card: take memory as needed, not all of it.
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        pass  # the runtime already started in this process; its pools stay as they are
    _configured_threads = threads


def fresh_keras_state() -> None:
    """Drop the last trial's models and graphs, then freeze what survives.

    `clear_session` runs a full garbage collection, which walks every object TensorFlow and the
    earlier trials left alive (500k+ after the import, ~19k more per trial): 0.4-0.8 s a trial,
    growing. `gc.freeze()` moves those survivors out of the collector's sight, so this and every
    collection during the next trial's tracing only walk what that trial creates: trials ran
    ~10% faster in a 12-trial loop. Results are unchanged: only when garbage is found changes.
    """
    import keras

    keras.backend.clear_session()  # also gc.collect(): the last trial's garbage goes first
    gc.freeze()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def bn_variance_shift(model: Any, x_val: np.ndarray) -> float | None:
    """Mean over hidden BN layers of moving variance / the variance BN sees at test time.

    Dropout in front of BN makes this ~1/(1 - rate) (Li et al. 2019, arXiv:1801.05134).
    """
    import keras

    layers = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization) and layer.name != "output_bn"
    ]
    if not layers:
        return None
    probe = keras.Model(model.inputs, [layer.input for layer in layers])
    # An eager call: predict() would trace a new function, ~10x the time on small models.
    outputs = probe(x_val, training=False)
    seen = [np.asarray(v) for v in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
    ratios = []
    for layer, values in zip(layers, seen, strict=True):
        axes = tuple(range(values.ndim - 1))
        test_var = np.var(values, axis=axes)
        moving = np.asarray(layer.moving_variance)
        keep = test_var > 1e-6
        if keep.any():
            ratios.append(float(np.mean(moving[keep] / test_var[keep])))
    return float(np.mean(ratios)) if ratios else None


def compile_for_training(model: Any, spec: SweepSpec, optimizer: Any, n_train: int) -> None:
    """Compile with the spec's loss and metric, and get the optimizer ready before any tracing.

    `steps_per_execution: epoch` runs a whole epoch as one compiled call. And Keras on TensorFlow
    (with no distribution strategy) would create the optimizer's variables while tracing the first
    training step, which makes TensorFlow trace that step twice; building them here saves the second
    trace (deep-sigmoid preset: fixed cost per trial 1.81 s -> 1.50 s). The same variables, initial
    values and random draws: results are identical (tests/unit/test_trainable.py).
    """
    import keras

    steps = math.ceil(n_train / spec.training.batch_size)
    per_execution = (
        steps if spec.training.steps_per_execution == "epoch" else spec.training.steps_per_execution
    )
    model.compile(
        optimizer=optimizer,
        loss=spec.training.loss,
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        steps_per_execution=per_execution,
    )
    model.optimizer.build(model.trainable_variables)


def node_facts() -> dict[str, str]:
    """Which Ray node and process run this trial (nodes of one host share an ip: the id tells)."""
    import ray

    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "hostname": socket.gethostname(),
        "pid": str(os.getpid()),
    }


def train_trial(config: dict[str, Any], spec: SweepSpec, data: Dataset) -> None:
    """Ray Tune function trainable: one (placement, dropout, optimizer, seed) trial.

    Every epoch's result names the node; an exception carries the node as a note, so the driver
    records where a trial failed even before its first epoch.
    """
    from sweep.failures import NODE_NOTE

    node = node_facts()
    try:
        _train(config, spec, data, node["node_id"])
    except Exception as err:
        err.add_note(NODE_NOTE + json.dumps(node))
        raise


def _train(config: dict[str, Any], spec: SweepSpec, data: Dataset, node_id: str) -> None:
    from ray import tune

    # Tune adds node_ip, hostname and pid itself; the node id it does not.
    fit_trial(config, spec, data, lambda metrics: tune.report({**metrics, "node_id": node_id}))


def prepare_trial(config: dict[str, Any], spec: SweepSpec, data: Dataset) -> Any:
    """A fresh, seeded, compiled model for one trial: the same weights in any process."""
    import_keras()
    import keras  # already loaded: import_keras() did the costly first import

    configure_tensorflow(spec.resources.cpus_per_trial)
    from sweep.models import build_model, build_optimizer

    fresh_keras_state()  # a reused worker must not keep the last trial's graph
    keras.utils.set_random_seed(trial_seed(config))
    model = build_model(
        spec.model, config["placement"], float(config["dropout"]), data.input_shape, data.n_classes
    )
    compile_for_training(
        model, spec, build_optimizer(spec.search.optimizers[config["optimizer"]]), len(data.x_train)
    )
    return model


def fit_trial(
    config: dict[str, Any],
    spec: SweepSpec,
    data: Dataset,
    report: Callable[[dict[str, Any]], None],
    epochs: int | None = None,
) -> None:
    """Train one trial in this process, handing each epoch's metrics to `report`.

    `epochs` (default: the spec's) stops earlier, as a scheduler would; the epochs before are the
    same. Ray's trainable and `sweep reproduce` both train through here.
    """
    import time

    import_keras()
    import keras

    started = time.perf_counter()  # after the import: a worker's first trial pays it alone
    model = prepare_trial(config, spec, data)
    epochs = epochs or spec.training.epochs

    class ReportEachEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs or {}
            metrics: dict[str, Any] = {m: float(logs[m]) for m in METRICS if m in logs}
            if not all(math.isfinite(v) for v in metrics.values()):
                bad = ", ".join(f"{k}={v}" for k, v in metrics.items() if not math.isfinite(v))
                raise TrialDiverged(f"training diverged at epoch {epoch + 1}: {bad}")
            metrics["epoch"] = epoch + 1
            metrics["peak_rss_mb"] = peak_rss_mb()
            metrics["train_time_s"] = time.perf_counter() - started  # build + fit so far
            if epoch + 1 == epochs:
                shift = bn_variance_shift(self.model, data.x_val)
                if shift is not None:
                    metrics["bn_variance_shift"] = shift
            report(metrics)

    model.fit(
        data.x_train,
        data.y_train,
        batch_size=spec.training.batch_size,
        epochs=epochs,
        validation_data=(data.x_val, data.y_val),
        shuffle=True,
        verbose=0,
        callbacks=[ReportEachEpoch()],
    )


def worker_env() -> dict[str, str]:
    """Environment for Ray workers: Keras on TensorFlow, quiet logs."""
    return {
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        "PYTHONWARNINGS": "ignore",
    }
