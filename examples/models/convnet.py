"""A small convolutional network built with `sweep.blocks`: what `kind: cnn` builds, by hand.

model: {kind: python, builder: models/convnet.py:build, image_input: true, args: {filters: [16, 32]}}
"""

from __future__ import annotations

import keras

from sweep.blocks import block


def build(
    placement: str,
    dropout: float,
    input_shape: tuple[int, ...],
    n_classes: int,
    filters: tuple[int, ...] = (16, 32),
    dense: int = 64,
) -> keras.Model:
    """A conv block per width (each followed by 2x2 pooling), a dense block, then a softmax head."""
    inputs = keras.Input(shape=input_shape, name="features")
    x = inputs
    for i, width in enumerate(filters, start=1):
        conv = keras.layers.Conv2D(width, 3, padding="same", name=f"conv{i}")
        x = block(x, conv, placement, dropout)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = block(x, keras.layers.Dense(dense, name="dense"), placement, dropout)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name=f"convnet_{placement}")
