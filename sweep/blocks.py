"""`sweep.blocks`: one block of a network, with the trial's BatchNormalization placement and dropout.

A model builder (`model: {kind: python, builder: ...}`) calls `block` around each weights layer
of its functional graph; the built-in mlp and cnn (sweep.models) are built with it too, so the
placement table below is the one place a placement is defined.

    def build(placement, dropout, input_shape, n_classes, width=32):
        inputs = keras.Input(input_shape)
        x = block(inputs, keras.layers.Dense(width), placement, dropout)
        outputs = keras.layers.Dense(n_classes, activation="softmax")(x)
        return keras.Model(inputs, outputs)
"""

from __future__ import annotations

from typing import Any

# The layer order of one block for each placement; adding a placement is one line here.
BLOCK_ORDER: dict[str, tuple[str, ...]] = {
    "none": ("weights", "activation", "dropout"),
    "before_activation": ("weights", "batchnorm", "activation", "dropout"),
    "after_activation": ("weights", "activation", "batchnorm", "dropout"),
    "after_dropout": ("weights", "activation", "dropout", "batchnorm"),
}


def block_steps(placement: str, dropout: float) -> tuple[str, ...]:
    """The steps of one block, in order (no dropout step at rate 0), or ValueError."""
    if placement not in BLOCK_ORDER:
        raise ValueError(f"placement: must be one of {', '.join(BLOCK_ORDER)} (got {placement!r})")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout: must be >= 0 and < 1 (got {dropout})")
    return tuple(step for step in BLOCK_ORDER[placement] if not (step == "dropout" and dropout == 0))


def bias_needed(placement: str) -> bool:
    """Whether a block's weights layer keeps its bias: not when BatchNormalization follows it directly.

    BN's beta makes that bias redundant (Ioffe & Szegedy 2015, section 3.2).
    """
    return BLOCK_ORDER[placement][1:2] != ("batchnorm",)


def without_bias(weights: Any) -> Any:
    """The layer `weights` again, unbuilt, without its bias (the same layer when it has none).

    Made from its config: a builder that already left the bias out keeps its layer, and its
    initializers' seeds, untouched.
    """
    config = weights.get_config()
    if not config.get("use_bias"):
        return weights
    return type(weights).from_config({**config, "use_bias": False})


def block(
    x: Any,
    weights: Any,
    placement: str,
    dropout: float,
    activation: str | Any | None = "relu",
    name: str | None = None,
) -> Any:
    """`x` through `weights`, then BatchNormalization, activation and dropout in `placement`'s order.

    `weights` is a new (unbuilt) Keras layer: Dense, Conv1D, Conv2D, .... Its bias is dropped where
    BatchNormalization follows it directly (`bias_needed`). `activation` is a Keras activation name
    or a layer; None leaves it out (a residual block activates after its addition). The added
    layers are named `{name}_bn`, `{name}_act` and `{name}_dropout` (`name`: the weights layer's
    by default).
    """
    import keras

    if not isinstance(weights, keras.layers.Layer) or weights.built:
        raise TypeError(f"weights: must be a new, unbuilt Keras layer (got {weights!r})")
    steps = block_steps(placement, dropout)
    if activation is None:
        steps = tuple(step for step in steps if step != "activation")
    prefix = name or weights.name
    if steps[1:2] == ("batchnorm",):  # as `bias_needed` says, with the activation left out or not
        weights = without_bias(weights)
    for step in steps:
        if step == "weights":
            x = weights(x)
        elif step == "batchnorm":
            x = keras.layers.BatchNormalization(name=f"{prefix}_bn")(x)
        elif step == "activation":
            layer = activation if isinstance(activation, keras.layers.Layer) else None
            x = (layer or keras.layers.Activation(activation, name=f"{prefix}_act"))(x)
        else:
            x = keras.layers.Dropout(dropout, name=f"{prefix}_dropout")(x)
    return x
