"""Model builders the unit tests name by module REF (`user_builders:build`), as an installed
package's would be; pytest puts this folder on sys.path."""

from __future__ import annotations

import keras

from sweep.blocks import block


def build(
    placement: str, dropout: float, input_shape: tuple[int, ...], n_classes: int, width: int = 8
) -> keras.Model:
    inputs = keras.Input(input_shape)
    x = block(inputs, keras.layers.Dense(width, name="hidden"), placement, dropout)
    return keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax", name="output")(x))


def ignores_placement(
    placement: str, dropout: float, input_shape: tuple[int, ...], n_classes: int
) -> keras.Model:
    inputs = keras.Input(input_shape)
    x = keras.layers.Dense(4)(inputs)
    return keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax")(x))


def wrong_output(placement: str, dropout: float, input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, block(inputs, keras.layers.Dense(n_classes + 1), placement, dropout))


def not_a_model(placement: str, dropout: float, input_shape: tuple[int, ...], n_classes: int) -> str:
    return "a network, honestly"


def raises(placement: str, dropout: float, input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    raise ValueError(f"no network for {placement}")
