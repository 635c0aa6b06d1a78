"""The built-in Keras networks (mlp, cnn): one `sweep.blocks` block per hidden layer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweep.blocks import bias_needed, block, block_steps
from sweep.spec import ModelSpec, OptimizerSpec

if TYPE_CHECKING:
    import keras


def _weights_layer(model: ModelSpec, units: int, use_bias: bool, name: str) -> Any:
    """Made with the bias `block` would keep: a layer made twice would draw its initializer's seed
    twice, and the built-in networks keep the initial weights they always had."""
    import keras

    if model.kind == "cnn":
        return keras.layers.Conv2D(
            units,
            model.kernel_size,
            padding="same",
            use_bias=use_bias,
            kernel_initializer=model.kernel_initializer,
            name=name,
        )
    return keras.layers.Dense(
        units, use_bias=use_bias, kernel_initializer=model.kernel_initializer, name=name
    )


def build_model(
    model: ModelSpec,
    placement: str,
    dropout: float,
    input_shape: tuple[int, ...],
    n_classes: int,
) -> keras.Model:
    """A new, uncompiled Keras model for one trial: the built-in network, or the spec's builder's
    (`kind: python`, sweep.builders; its failures are RefError)."""
    import keras

    if model.kind == "python":
        from sweep.builders import build_user_model

        block_steps(placement, dropout)
        return build_user_model(model, placement, dropout, input_shape, n_classes)
    block_steps(placement, dropout)  # ValueError for a placement or rate no block can have
    if model.kind == "cnn" and len(input_shape) != 3:
        raise ValueError(f"model.kind: cnn needs (height, width, channels) input (got {input_shape})")
    inputs = keras.Input(shape=input_shape, name="features")
    x = inputs
    for i, units in enumerate(model.hidden_units, start=1):
        weights = _weights_layer(model, units, bias_needed(placement), f"block{i}_{model.kind}")
        x = block(x, weights, placement, dropout, model.activation, name=f"block{i}")
        if model.kind == "cnn" and model.pool and min(x.shape[1:3]) >= 2:
            x = keras.layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    if model.kind == "cnn":
        x = keras.layers.Flatten(name="flatten")(x)
    with_bn = model.output_batchnorm and placement != "none"
    x = keras.layers.Dense(
        n_classes, use_bias=not with_bn, kernel_initializer=model.kernel_initializer, name="output"
    )(x)
    if with_bn:
        x = keras.layers.BatchNormalization(name="output_bn")(x)
    # float32 under a mixed_float16 policy too (sweep.training.precision).
    outputs = keras.layers.Activation("softmax", dtype="float32", name="softmax")(x)
    return keras.Model(inputs, outputs, name=f"{model.kind}_{placement}")


def build_optimizer(optimizer: OptimizerSpec, learning_rate: float | None = None) -> Any:
    """A Keras optimizer at the trial's `learning_rate` (default: the optimizer's fixed rate);
    `decay` becomes the legacy schedule lr / (1 + decay * step)."""
    import keras

    rate = learning_rate if learning_rate is not None else optimizer.fixed_rate
    if rate is None:
        raise ValueError(f"optimizer {optimizer.label}: a learning-rate range needs the trial's drawn rate")
    settings = optimizer.settings_at(rate)
    decay = settings.pop("decay", 0.0)
    schedule: Any = settings.pop("learning_rate")
    if decay:
        schedule = keras.optimizers.schedules.InverseTimeDecay(schedule, decay_steps=1, decay_rate=decay)
    classes = {
        "sgd": keras.optimizers.SGD,
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
        "nadam": keras.optimizers.Nadam,
        "adagrad": keras.optimizers.Adagrad,
    }
    return classes[optimizer.name](learning_rate=schedule, **settings)


def describe_model(model: keras.Model) -> list[tuple[str, str, str]]:
    """(layer name, Keras class, output shape) for each layer, in order."""
    rows = []
    for layer in model.layers:
        shape = tuple(layer.output.shape) if hasattr(layer, "output") else ()
        shown = "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
        rows.append((layer.name, type(layer).__name__, shown))
    return rows
