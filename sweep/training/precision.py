"""Mixed precision in a trial: Keras' dtype policy set for each trial, and the output in float32.

Under `mixed_float16` layers compute in float16 and keep their weights in float32 (Keras scales the
loss for the optimizer: `Model.compile` wraps it in a `LossScaleOptimizer`). The softmax stays in
float32: in float16 it loses the small probabilities the loss needs (Keras' mixed precision guide:
https://keras.io/guides/mixed_precision/). The policy is Keras global state, so every trial sets
its own: a reused worker's next trial never inherits the last one's.
"""

from __future__ import annotations

from typing import Any

MIXED = "mixed_float16"
FULL = "float32"


def set_precision(mixed: bool) -> str:
    """Make `mixed_float16` (or float32) the policy of the layers built from now on; its name."""
    import keras

    policy = MIXED if mixed else FULL
    keras.config.set_dtype_policy(policy)
    return policy


def float32_output(model: Any) -> Any:
    """`model` when its output is float32 already, else `model` with a float32 linear Activation
    on top: the same weights, the same predictions, in float32.

    Built-in networks make their softmax float32 themselves (`sweep.models`); this covers any other
    functional or built Sequential model of one output.
    """
    import keras

    if keras.backend.standardize_dtype(model.outputs[0].dtype) == "float32":
        return model
    if len(model.outputs) != 1:
        raise ValueError(f"mixed precision: a model of one output is needed (got {len(model.outputs)})")
    output = keras.layers.Activation("linear", dtype=FULL, name="output_float32")(model.outputs[0])
    return keras.Model(model.inputs, output, name=model.name)
