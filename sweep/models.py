"""The Keras builder: one block per hidden layer, BatchNormalization placed by a table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweep.spec import ModelSpec, OptimizerSpec

if TYPE_CHECKING:
    import keras

# The layer order of one block for each placement; adding a placement is one line here.
BLOCK_ORDER: dict[str, tuple[str, ...]] = {
    "none": ("weights", "activation", "dropout"),
    "before_activation": ("weights", "batchnorm", "activation", "dropout"),
    "after_activation": ("weights", "activation", "batchnorm", "dropout"),
    "after_dropout": ("weights", "activation", "dropout", "batchnorm"),
}


def _weights_layer(model: ModelSpec, units: int, use_bias: bool, name: str) -> Any:
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


def block_layers(model: ModelSpec, units: int, placement: str, dropout: float, index: int) -> list[Any]:
    """The layers of hidden block `index`, in order."""
    import keras

    # BN's beta makes a bias right before it redundant (Ioffe & Szegedy 2015, section 3.2).
    use_bias = placement != "before_activation"
    make = {
        "weights": lambda: _weights_layer(model, units, use_bias, f"block{index}_{model.kind}"),
        "batchnorm": lambda: keras.layers.BatchNormalization(name=f"block{index}_bn"),
        "activation": lambda: keras.layers.Activation(model.activation, name=f"block{index}_act"),
        "dropout": lambda: keras.layers.Dropout(dropout, name=f"block{index}_dropout"),
    }
    order = [step for step in BLOCK_ORDER[placement] if not (step == "dropout" and dropout == 0)]
    return [make[step]() for step in order]


def build_model(
    model: ModelSpec,
    placement: str,
    dropout: float,
    input_shape: tuple[int, ...],
    n_classes: int,
) -> keras.Model:
    """A new, uncompiled Keras model for one trial."""
    import keras

    if placement not in BLOCK_ORDER:
        raise ValueError(f"placement: must be one of {', '.join(BLOCK_ORDER)} (got {placement!r})")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout: must be >= 0 and < 1 (got {dropout})")
    if model.kind == "cnn" and len(input_shape) != 3:
        raise ValueError(f"model.kind: cnn needs (height, width, channels) input (got {input_shape})")
    inputs = keras.Input(shape=input_shape, name="features")
    x = inputs
    for i, units in enumerate(model.hidden_units, start=1):
        for layer in block_layers(model, units, placement, dropout, i):
            x = layer(x)
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
