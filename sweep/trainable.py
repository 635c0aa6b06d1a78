"""What runs on a Ray worker for one trial: build, train, report every epoch."""

from __future__ import annotations

import gc
import json
import math
import os
import resource
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from sweep.data import Dataset, trial_data
from sweep.space import trial_seed
from sweep.spec import SweepSpec

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
TEST_METRICS = ("test_loss", "test_accuracy")
# Results a trial's run keeps only as summaries (by these names) from the last epoch it reported
# (tracking.SweepTracker.end_trial): the test split judges the final model only, not each epoch's,
# and the rest are measured once, after the last epoch.
LAST_RESULTS = {
    "test_loss": "final_test_loss",
    "test_accuracy": "final_test_accuracy",
    "bn_variance_shift": "bn_variance_shift",
    "bn_variance_shift_expected": "bn_variance_shift_expected",
    "val_accuracy_bn_recalibrated": "final_val_accuracy_bn_recalibrated",
    "test_accuracy_bn_recalibrated": "final_test_accuracy_bn_recalibrated",
}
_CHUNK = 1024  # rows per eager call in evaluations below: bounded memory on large splits


class TrialDiverged(RuntimeError):
    """The loss stopped being a finite number."""


_configured_threads: int | None = None

# Keras imports these when installed, for its plotting helpers and scikit-learn wrappers, which a
# trial never uses; they are a large part of a worker's Keras import (docs/performance.md).
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
    earlier trials left alive, a cost that grows with every trial. `gc.freeze()` moves those
    survivors out of the collector's sight, so this and every collection during the next trial's
    tracing only walk what that trial creates (figures: docs/performance.md). Results are
    unchanged: only when garbage is found changes.
    """
    import keras

    keras.backend.clear_session()  # also gc.collect(): the last trial's garbage goes first
    gc.freeze()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _bn_layers(model: Any) -> list[Any]:
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def _per_channel(outputs: Any) -> list[np.ndarray]:
    """Each output as float64 rows of channels (BN normalises the last axis)."""
    values = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [np.asarray(v, dtype=np.float64).reshape(-1, v.shape[-1]) for v in values]


def _shift_layers(model: Any) -> list[tuple[Any, float | None]]:
    """Hidden BN layers whose input differs between training and test only by the Dropout right
    before them, each with that Dropout's rate (None: no Dropout feeds it).

    There Li et al.'s formula holds as stated; below another Dropout, a BN layer's test-time input
    also carries the shifts of the layers above (more than the formula, for ReLU).
    """
    import keras

    made_by = {id(layer.output): layer for layer in model.layers}
    above: list[Any] = []  # the Dropout layers met so far: the model is one chain, in order
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            above.append(layer)
        elif isinstance(layer, keras.layers.BatchNormalization) and layer.name != "output_bn":
            feeder = made_by.get(id(layer.input))
            fed = feeder if isinstance(feeder, keras.layers.Dropout) else None
            if above == ([fed] if fed else []):
                found.append((layer, fed.rate if fed else None))
    return found


def bn_variance_shift(model: Any, x_val: np.ndarray) -> tuple[float | None, float | None]:
    """BN's moving variance / the variance it sees at test time, and Li et al.'s prediction of it.

    Over the BN layers of `_shift_layers`: each layer's ratio is the median over its channels,
    leaving out channels whose test variance is under 1% of the layer's median (nearly dead units,
    whose near-zero denominators would swamp a mean); layers are averaged. The prediction
    (arXiv:1801.05134, section 3) is 1/p + (1/p - 1) * c^2/v for keep probability p and each
    channel's measured mean c and variance v of dropout's input; None where no Dropout feeds BN.
    """
    import keras

    layers = _shift_layers(model)
    if not layers:
        return None, None
    probe = keras.Model(model.input, [layer.input for layer, _ in layers])
    # An eager call: predict() would trace a new function, ~10x the time on small models.
    seen = _per_channel(probe(x_val, training=False))
    measured, expected = [], []
    for (layer, rate), values in zip(layers, seen, strict=True):
        test_var = values.var(axis=0)
        keep = test_var > max(1e-6, 0.01 * float(np.median(test_var)))
        if not keep.any():
            continue
        moving = np.asarray(layer.moving_variance, dtype=np.float64)
        measured.append(float(np.median(moving[keep] / test_var[keep])))
        if rate:
            # Inference-mode dropout is the identity: its input is what BN sees at test time.
            p = 1 - rate
            c2_over_v = values.mean(axis=0)[keep] ** 2 / test_var[keep]
            expected.append(float(np.median(1 / p + (1 / p - 1) * c2_over_v)))
    return (
        float(np.mean(measured)) if measured else None,
        float(np.mean(expected)) if expected else None,
    )


def evaluate(model: Any, x: np.ndarray, y: np.ndarray, loss: str) -> tuple[float, float]:
    """(loss, accuracy) of `model` in inference mode, eagerly: no function traced for a one-off."""
    import keras

    loss_fn = keras.losses.get(loss)
    total_loss, correct = 0.0, 0
    for i in range(0, len(x), _CHUNK):
        predicted = model(x[i : i + _CHUNK], training=False)
        truth = y[i : i + _CHUNK]
        total_loss += float(np.sum(np.asarray(loss_fn(truth, predicted), dtype=np.float64)))
        correct += int(np.sum(np.argmax(np.asarray(predicted), axis=-1) == np.argmax(truth, axis=-1)))
    return total_loss / len(x), correct / len(x)


@contextmanager
def recalibrated_bn(model: Any, x: np.ndarray) -> Iterator[None]:
    """Inside, every BN layer's moving mean and variance are those of its input over `x` with
    dropout off; restored on exit.

    Li et al. (arXiv:1801.05134, section 5) re-estimate BN's statistics without dropout to undo the
    variance shift. Layers are set in order, each from what the layers before it, already set,
    pass on; the population statistics replace the moving averages, so their lag goes too.
    """
    import keras

    layers = _bn_layers(model)
    saved = [(layer, np.array(layer.moving_mean), np.array(layer.moving_variance)) for layer in layers]
    try:
        for layer in layers:
            probe = keras.Model(model.input, layer.input)
            count, mean, m2 = 0, np.zeros(1), np.zeros(1)
            for i in range(0, len(x), _CHUNK):  # Chan et al.'s pairwise update of mean and M2
                (values,) = _per_channel(probe(x[i : i + _CHUNK], training=False))
                n, chunk_mean = len(values), values.mean(axis=0)
                delta, total = chunk_mean - mean, count + len(values)
                m2 = m2 + ((values - chunk_mean) ** 2).sum(axis=0) + delta**2 * count * n / total
                mean, count = mean + delta * n / total, total
            layer.moving_mean.assign(mean.astype(np.float32))
            layer.moving_variance.assign((m2 / count).astype(np.float32))  # biased, as BN's own
        yield
    finally:
        for layer, moving_mean, moving_variance in saved:
            layer.moving_mean.assign(moving_mean)
            layer.moving_variance.assign(moving_variance)


def final_evaluation(model: Any, spec: SweepSpec, data: Dataset) -> dict[str, float]:
    """What a trial's last epoch adds: the variance shift, and accuracies with BN recalibrated."""
    out: dict[str, float] = {}
    shift, expected = bn_variance_shift(model, data.x_val)
    if shift is not None:
        out["bn_variance_shift"] = shift
    if expected is not None:
        out["bn_variance_shift_expected"] = expected
    if not _bn_layers(model):
        return out
    with recalibrated_bn(model, data.x_train):
        out["val_accuracy_bn_recalibrated"] = evaluate(model, data.x_val, data.y_val, spec.training.loss)[1]
        if data.x_test is not None and data.y_test is not None:
            test = evaluate(model, data.x_test, data.y_test, spec.training.loss)
            out["test_accuracy_bn_recalibrated"] = test[1]
    return out


def compile_for_training(model: Any, spec: SweepSpec, optimizer: Any, n_train: int) -> None:
    """Compile with the spec's loss and metric, and get the optimizer ready before any tracing.

    `steps_per_execution: epoch` runs a whole epoch as one compiled call. And Keras on TensorFlow
    (with no distribution strategy) would create the optimizer's variables while tracing the first
    training step, which makes TensorFlow trace that step twice; building them here saves the second
    trace (figures: docs/performance.md). The same variables, initial
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
    data = trial_data(data, spec.dataset, trial_seed(config))
    model = prepare_trial(config, spec, data)
    epochs = epochs or spec.training.epochs
    may_stop = spec.strategy.scheduler == "asha"

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
            # ASHA may stop a trial after any epoch, which then holds its final model.
            last = epoch + 1 == epochs
            if data.x_test is not None and data.y_test is not None and (last or may_stop):
                test = evaluate(self.model, data.x_test, data.y_test, spec.training.loss)
                metrics.update(zip(TEST_METRICS, test, strict=True))
            if last:
                metrics.update(final_evaluation(self.model, spec, data))
            report(metrics)

    model.fit(
        training_batches(data, spec.training.batch_size, trial_seed(config)),
        epochs=epochs,
        validation_data=(data.x_val, data.y_val),
        shuffle=False,  # the batches above are already shuffled, every epoch anew
        verbose=0,
        callbacks=[ReportEachEpoch()],
    )


def training_batches(data: Dataset, batch_size: int, seed: int) -> Any:
    """The training set, reshuffled every epoch in an order the seed fixes.

    Keras' own `fit(x, y, shuffle=True)` under a global seed repeats one batch order in every
    epoch (seen with Keras 3.x on TensorFlow; TensorFlow issue 35682): an explicit shuffle seed
    with `reshuffle_each_iteration` gives each epoch its own order, the same in every process and
    for every placement of a seed.
    """
    import tensorflow as tf

    return (
        tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
        .shuffle(len(data.x_train), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(2)
    )


def worker_env() -> dict[str, str]:
    """Environment for Ray workers: Keras on TensorFlow, quiet logs."""
    return {
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        "PYTHONWARNINGS": "ignore",
    }
