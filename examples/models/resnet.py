"""A small residual network for image data, for `model: {kind: python}` (examples/resnet-digits.yaml).

Each residual block is two `sweep.blocks.block` convolutions, the second without its activation,
added to the block's input and then activated, so BatchNormalization sits where the trial's
placement puts it inside both convolutions of every block.
"""

from __future__ import annotations

import keras

from sweep.blocks import block


def conv(filters: int, name: str) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(filters, 3, padding="same", kernel_initializer="he_normal", name=name)


def residual_block(
    x: keras.KerasTensor, filters: int, placement: str, dropout: float, name: str
) -> keras.KerasTensor:
    """Two 3x3 convolutions and a shortcut (a 1x1 convolution where the width changes)."""
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, name=f"{name}_shortcut")(x)
    y = block(x, conv(filters, f"{name}_conv1"), placement, dropout, "relu")
    y = block(y, conv(filters, f"{name}_conv2"), placement, dropout, activation=None)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def build(
    placement: str,
    dropout: float,
    input_shape: tuple[int, ...],
    n_classes: int,
    widths: tuple[int, ...] = (16, 32),
) -> keras.Model:
    """A stem convolution, one residual block per width (pooling between), then a softmax head."""
    inputs = keras.Input(shape=input_shape, name="features")
    x = block(inputs, conv(widths[0], "stem"), placement, 0.0)
    for i, filters in enumerate(widths, start=1):
        if i > 1:
            x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
        x = residual_block(x, filters, placement, dropout, name=f"res{i}")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name=f"resnet_{placement}")
