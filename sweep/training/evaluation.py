"""A trained model measured: loss and accuracy in inference mode, BN's variance shift (Li et al.,
arXiv:1801.05134), and accuracy with BN's statistics recalibrated without dropout."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from sweep.data import Dataset
from sweep.spec import SweepSpec

_CHUNK = 1024  # rows per eager call in evaluations below: bounded memory on large splits


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
