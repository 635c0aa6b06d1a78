"""One trial trained in this process: a fresh seeded model, compiled, fit epoch by epoch, each
epoch's metrics handed to a callback."""

from __future__ import annotations

import math
import resource
import sys
from collections.abc import Callable
from typing import Any, Protocol

from sweep.data import Dataset, trial_data
from sweep.failures import TrialDiverged
from sweep.spec import SweepSpec
from sweep.store.layout import METRICS, TEST_METRICS
from sweep.training.evaluation import evaluate, final_evaluation
from sweep.training.keras_setup import configure_tensorflow, fresh_keras_state, import_keras
from sweep.training.precision import float32_output, set_precision
from sweep.trial import trial_rate, trial_seed


def peak_rss_mb() -> float:
    """This process's peak resident memory so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def compile_for_training(model: Any, spec: SweepSpec, optimizer: Any, n_train: int) -> None:
    """Compile with the spec's loss and metric, and get the optimizer ready before any tracing.

    `steps_per_execution: epoch` runs a whole epoch as one compiled call. And Keras on TensorFlow
    (with no distribution strategy) would create the optimizer's variables while tracing the first
    training step, which makes TensorFlow trace that step twice; building them here saves the second
    trace (docs/performance.md). The same variables, initial values and random draws: results are
    identical (tests/unit/test_trainable.py).
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


def prepare_trial(config: dict[str, Any], spec: SweepSpec, data: Dataset) -> Any:
    """A fresh, seeded, compiled model for one trial: the same weights in any process."""
    import_keras()
    import keras  # already loaded: import_keras() did the costly first import

    configure_tensorflow(spec.resources.cpus_per_trial)
    from sweep.models import build_model, build_optimizer

    fresh_keras_state()  # a reused worker must not keep the last trial's graph
    set_precision(spec.training.mixed_precision)  # nor its dtype policy
    keras.utils.set_random_seed(trial_seed(config))
    model = build_model(
        spec.model, config["placement"], float(config["dropout"]), data.input_shape, data.n_classes
    )
    if spec.training.mixed_precision:
        model = float32_output(model)
    optimizer = build_optimizer(spec.search.optimizers[config["optimizer"]], trial_rate(config, spec))
    compile_for_training(model, spec, optimizer, len(data.x_train))
    return model


class Checkpoints(Protocol):
    """Where a trial's training state is restored from and saved to (`sweep.trainable`'s for Tune)."""

    def restore(self, model: Any) -> int:
        """Load the latest state into the freshly built model: the epochs it had done (0: none)."""

    def report(self, model: Any, metrics: dict[str, Any]) -> None:
        """Report one epoch's metrics, with the model's state when a checkpoint is due."""


def fit_trial(
    config: dict[str, Any],
    spec: SweepSpec,
    data: Dataset,
    report: Callable[[dict[str, Any]], None],
    epochs: int | None = None,
    checkpoints: Checkpoints | None = None,
) -> None:
    """Train one trial in this process, handing each epoch's metrics to `report`.

    `epochs` (default: the spec's) stops earlier, as a scheduler would; the epochs before are the
    same. With `checkpoints`, training continues after the epochs a restored state had done, and
    each epoch is reported through it instead of `report`. Ray's trainable and `sweep reproduce`
    both train through here.
    """
    import time

    import_keras()
    import keras

    started = time.perf_counter()  # after the import: a worker's first trial pays it alone
    data = trial_data(data, spec.dataset, trial_seed(config))
    model = prepare_trial(config, spec, data)
    epochs = epochs or spec.training.epochs
    done = checkpoints.restore(model) if checkpoints is not None else 0
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
            if checkpoints is not None:
                checkpoints.report(self.model, metrics)
            else:
                report(metrics)

    model.fit(
        training_batches(data, spec.training.batch_size, trial_seed(config), done),
        epochs=epochs,
        initial_epoch=done,
        validation_data=(data.x_val, data.y_val),
        shuffle=False,  # the batches above are already shuffled, every epoch anew
        verbose=0,
        callbacks=[ReportEachEpoch()],
    )


_ITERATORS_PER_EPOCH = 2  # iterators Keras' fit opens over a dataset of known length per epoch


def training_batches(data: Dataset, batch_size: int, seed: int, epochs_done: int = 0) -> Any:
    """The training set, reshuffled every epoch in an order the seed fixes.

    Keras' own `fit(x, y, shuffle=True)` under a global seed repeats one batch order in every
    epoch (seen with Keras 3.x on TensorFlow; TensorFlow issue 35682): an explicit shuffle seed
    with `reshuffle_each_iteration` gives each epoch its own order, the same in every process and
    for every placement of a seed. Each iterator opened over the dataset draws the next order, and
    Keras' `fit` opens two per epoch (one as the epoch starts, one as it ends that the next epoch
    does not use: Keras 3.x `EpochIterator._enumerate_iterator` without `steps_per_epoch`), so a
    trial resumed after `epochs_done` epochs opens and drops that many pairs first: its next epoch
    then trains on the order an uninterrupted trial's would (tests/unit/test_training_checkpoints.py).
    """
    import tensorflow as tf

    batches = (
        tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
        .shuffle(len(data.x_train), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(2)
    )
    for _ in range(_ITERATORS_PER_EPOCH * epochs_done):
        iter(batches)  # draws a shuffle seed; no batch is produced
    return batches
