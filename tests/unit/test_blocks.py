import hashlib

import keras
import numpy as np
import pytest

from sweep.blocks import BLOCK_ORDER, block, block_steps
from sweep.models import build_model
from sweep.spec import ModelSpec


def _layers(model: keras.Model) -> list[tuple[str, str]]:
    return [(layer.name, type(layer).__name__) for layer in model.layers]


def _dense_model(placement: str, dropout: float) -> keras.Model:
    inputs = keras.Input((6,))
    x = block(inputs, keras.layers.Dense(5, name="d"), placement, dropout)
    return keras.Model(inputs, x)


@pytest.mark.parametrize("placement", list(BLOCK_ORDER))
def test_each_placement_puts_the_layers_in_its_table_order(placement: str) -> None:
    names = {"weights": "Dense", "batchnorm": "BatchNormalization", "activation": "Activation"}
    expected = [names.get(step, "Dropout") for step in BLOCK_ORDER[placement]]
    assert [cls for _, cls in _layers(_dense_model(placement, 0.3))][1:] == expected


def test_the_bias_is_dropped_only_where_bn_follows_the_weights_directly() -> None:
    for placement in BLOCK_ORDER:
        dense = _dense_model(placement, 0.3).get_layer("d")
        assert dense.use_bias == (placement != "before_activation"), placement
        assert len(dense.weights) == (1 if placement == "before_activation" else 2)


def test_conv2d_blocks_follow_the_table_and_drop_the_bias_before_bn() -> None:
    inputs = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(4, 3, padding="same", name="conv")
    model = keras.Model(inputs, block(inputs, conv, "before_activation", 0.2, "tanh"))
    assert [cls for _, cls in _layers(model)][1:] == ["Conv2D", "BatchNormalization", "Activation", "Dropout"]
    assert model.get_layer("conv").use_bias is False
    assert model.output.shape == (None, 8, 8, 4)
    assert model.get_layer("conv_act").get_config()["activation"] == "tanh"


def test_conv1d_after_dropout_keeps_its_bias_and_names_the_added_layers() -> None:
    inputs = keras.Input((10, 2))
    x = block(inputs, keras.layers.Conv1D(3, 2), "after_dropout", 0.5, name="b1")
    model = keras.Model(inputs, x)
    assert [name for name, _ in _layers(model)][2:] == ["b1_act", "b1_dropout", "b1_bn"]
    assert model.layers[1].use_bias is True


def test_no_dropout_layer_at_rate_zero_and_no_activation_when_none() -> None:
    assert block_steps("after_dropout", 0.0) == ("weights", "activation", "batchnorm")
    inputs = keras.Input((6,))
    model = keras.Model(inputs, block(inputs, keras.layers.Dense(3), "after_activation", 0.0, None))
    assert [cls for _, cls in _layers(model)][1:] == ["Dense", "BatchNormalization"]
    assert model.layers[1].use_bias is False  # BN follows the weights directly once act is left out


def test_bad_placement_rate_or_layer_is_refused() -> None:
    inputs = keras.Input((6,))
    with pytest.raises(ValueError, match="placement: must be one of"):
        block(inputs, keras.layers.Dense(3), "sideways", 0.1)
    with pytest.raises(ValueError, match=r"dropout: must be >= 0 and < 1 \(got 1.0\)"):
        block(inputs, keras.layers.Dense(3), "none", 1.0)
    with pytest.raises(TypeError, match="unbuilt Keras layer"):
        block(inputs, "dense", "none", 0.1)


# The built-in networks as sweep.models built them before sweep.blocks existed (main at 0a81a9a):
# the refactor must give the same layers and the same initial weights, bit for bit.
def _legacy_layer(
    model: ModelSpec, step: str, i: int, units: int, placement: str, dropout: float
) -> keras.Layer:
    init, name = model.kernel_initializer, f"block{i}_{model.kind}"
    if step == "weights" and model.kind == "cnn":
        use_bias = placement != "before_activation"
        return keras.layers.Conv2D(
            units, model.kernel_size, padding="same", use_bias=use_bias, kernel_initializer=init, name=name
        )
    if step == "weights":
        return keras.layers.Dense(
            units, use_bias=placement != "before_activation", kernel_initializer=init, name=name
        )
    if step == "batchnorm":
        return keras.layers.BatchNormalization(name=f"block{i}_bn")
    if step == "activation":
        return keras.layers.Activation(model.activation, name=f"block{i}_act")
    return keras.layers.Dropout(dropout, name=f"block{i}_dropout")


def _legacy_model(
    model: ModelSpec, placement: str, dropout: float, shape: tuple[int, ...], n: int
) -> keras.Model:
    inputs = keras.Input(shape=shape, name="features")
    x = inputs
    for i, units in enumerate(model.hidden_units, start=1):
        for step in BLOCK_ORDER[placement]:
            if not (step == "dropout" and dropout == 0):
                x = _legacy_layer(model, step, i, units, placement, dropout)(x)
        if model.kind == "cnn" and model.pool and min(x.shape[1:3]) >= 2:
            x = keras.layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    if model.kind == "cnn":
        x = keras.layers.Flatten(name="flatten")(x)
    with_bn = model.output_batchnorm and placement != "none"
    init = model.kernel_initializer
    x = keras.layers.Dense(n, use_bias=not with_bn, kernel_initializer=init, name="output")(x)
    if with_bn:
        x = keras.layers.BatchNormalization(name="output_bn")(x)
    outputs = keras.layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inputs, outputs, name=f"{model.kind}_{placement}")


def _fingerprint(model: keras.Model) -> tuple[list[tuple[str, str, str]], str]:
    configs = [
        (layer.name, type(layer).__name__, repr(sorted(layer.get_config().items()))) for layer in model.layers
    ]
    digest = hashlib.sha256()
    for w in model.weights:
        digest.update(w.path.encode())
        digest.update(np.asarray(w).tobytes())
    return configs, digest.hexdigest()


@pytest.mark.parametrize(
    ("spec", "shape"),
    [
        (ModelSpec(hidden_units=[8, 4], activation="tanh", output_batchnorm=True), (14,)),
        (ModelSpec(hidden_units=[6], kernel_initializer="he_normal"), (5,)),
        (ModelSpec(kind="cnn", hidden_units=[4, 8], kernel_size=2), (8, 8, 1)),
    ],
)
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_the_built_in_networks_are_the_same_layers_and_weights_as_before(
    spec: ModelSpec, shape: tuple[int, ...], dropout: float
) -> None:
    for placement in BLOCK_ORDER:
        keras.utils.set_random_seed(7)
        built = _fingerprint(build_model(spec, placement, dropout, shape, 3))
        keras.utils.set_random_seed(7)
        legacy = _fingerprint(_legacy_model(spec, placement, dropout, shape, 3))
        assert built == legacy, placement
