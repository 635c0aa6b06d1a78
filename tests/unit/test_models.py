import pytest

from sweep.blocks import BLOCK_ORDER
from sweep.models import build_model, build_optimizer, describe_model
from sweep.spec import ModelSpec, OptimizerSpec

MLP = ModelSpec(hidden_units=[8, 4], activation="tanh", output_batchnorm=True)
CNN = ModelSpec(kind="cnn", hidden_units=[4, 8], activation="relu")


def classes(model) -> list[str]:
    return [cls for _, cls, _ in describe_model(model)]


def block(model, index: int) -> list[str]:
    return [cls for name, cls, _ in describe_model(model) if name.startswith(f"block{index}_")]


def test_before_activation_is_dense_bn_act_dropout_without_bias() -> None:
    model = build_model(MLP, "before_activation", 0.5, (14,), 2)
    assert block(model, 1) == ["Dense", "BatchNormalization", "Activation", "Dropout"]
    assert model.get_layer("block1_mlp").use_bias is False


def test_after_activation_is_dense_act_bn_dropout() -> None:
    model = build_model(MLP, "after_activation", 0.5, (14,), 2)
    assert block(model, 1) == ["Dense", "Activation", "BatchNormalization", "Dropout"]
    assert model.get_layer("block1_mlp").use_bias is True


def test_after_dropout_puts_bn_after_dropout() -> None:
    model = build_model(MLP, "after_dropout", 0.5, (14,), 2)
    assert block(model, 2) == ["Dense", "Activation", "Dropout", "BatchNormalization"]


def test_none_has_no_batchnorm_anywhere() -> None:
    model = build_model(MLP, "none", 0.5, (14,), 2)
    assert "BatchNormalization" not in classes(model)
    assert block(model, 1) == ["Dense", "Activation", "Dropout"]


def test_zero_dropout_leaves_out_the_dropout_layer() -> None:
    model = build_model(MLP, "after_dropout", 0.0, (14,), 2)
    assert block(model, 1) == ["Dense", "Activation", "BatchNormalization"]


def test_output_batchnorm_sits_between_output_dense_and_softmax() -> None:
    model = build_model(MLP, "after_activation", 0.25, (14,), 3)
    assert classes(model)[-3:] == ["Dense", "BatchNormalization", "Activation"]
    assert model.output_shape == (None, 3)


def test_every_placement_in_the_table_builds_one_block_per_hidden_entry() -> None:
    for placement in BLOCK_ORDER:
        model = build_model(MLP, placement, 0.25, (14,), 2)
        assert {name.split("_")[0] for name, _, _ in describe_model(model) if name.startswith("block")} == {
            "block1",
            "block2",
        }


@pytest.mark.parametrize(
    ("placement", "expected"),
    [
        ("before_activation", ["Conv2D", "BatchNormalization", "Activation", "Dropout", "MaxPooling2D"]),
        ("after_activation", ["Conv2D", "Activation", "BatchNormalization", "Dropout", "MaxPooling2D"]),
        ("after_dropout", ["Conv2D", "Activation", "Dropout", "BatchNormalization", "MaxPooling2D"]),
        ("none", ["Conv2D", "Activation", "Dropout", "MaxPooling2D"]),
    ],
)
def test_cnn_blocks_follow_the_same_placement_table(placement: str, expected: list[str]) -> None:
    model = build_model(CNN, placement, 0.25, (8, 8, 1), 10)
    assert block(model, 1) == expected
    assert "Flatten" in classes(model)
    assert model.output_shape == (None, 10)


def test_cnn_rejects_flat_input() -> None:
    with pytest.raises(ValueError, match="cnn needs"):
        build_model(CNN, "none", 0.0, (64,), 10)


def test_unknown_placement_is_rejected() -> None:
    with pytest.raises(ValueError, match="placement: must be one of"):
        build_model(MLP, "sideways", 0.0, (14,), 2)


def test_decay_becomes_inverse_time_schedule() -> None:
    import keras

    opt = build_optimizer(
        OptimizerSpec(name="sgd", learning_rate=0.1, momentum=0.9, nesterov=True, decay=1e-2)
    )
    schedule = opt._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.InverseTimeDecay)
    assert float(schedule(100)) == pytest.approx(0.1 / (1 + 1e-2 * 100))
    assert opt.nesterov is True


def test_each_optimizer_name_builds_its_keras_class() -> None:
    for name, cls in [
        ("adam", "Adam"),
        ("adamw", "AdamW"),
        ("rmsprop", "RMSprop"),
        ("nadam", "Nadam"),
        ("adagrad", "Adagrad"),
    ]:
        assert type(build_optimizer(OptimizerSpec(name=name))).__name__ == cls


def test_a_ranged_optimizer_builds_at_the_trials_drawn_rate() -> None:
    ranged = OptimizerSpec(name="sgd", label="sgd", learning_rate={"low": 0.01, "high": 1.0}, momentum=0.9)
    opt = build_optimizer(ranged, 0.3783)
    assert float(opt.learning_rate) == pytest.approx(0.3783) and float(opt.momentum) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="needs the trial's drawn rate"):
        build_optimizer(ranged)
