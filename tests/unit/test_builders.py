"""User model builders (`model: {kind: python}`): the spec's rules, the library's checks, the CLI's."""

from pathlib import Path

import keras
import pytest
import yaml
from typer.testing import CliRunner

from sweep.builders import build_user_model, check_builder
from sweep.cli import app
from sweep.models import build_model
from sweep.refs import RefError
from sweep.spec import SpecError, parse_spec

runner = CliRunner()

NET = """\
import keras
from sweep.blocks import block

def build(placement, dropout, input_shape, n_classes, width=8):
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    x = block(x, keras.layers.Dense(width, name="hidden"), placement, dropout)
    return keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax")(x))
"""


def python_spec(builder: str, **model: object) -> dict:
    return {
        "name": "user-net",
        "dataset": {"source": "digits"},
        "model": {"kind": "python", "builder": builder, **model},
        "search": {"dropout": [0.0, 0.5], "seeds": 1},
        "training": {"epochs": 1},
    }


def errors_of(data: dict) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    return caught.value.errors


def test_the_built_in_fields_are_refused_with_kind_python() -> None:
    errors = errors_of(python_spec("user_builders:build", hidden_units=[8], pool=False))
    assert "model.hidden_units: only used with kind mlp or cnn (the builder makes the network)" in errors
    assert "model.pool: only used with kind mlp or cnn (the builder makes the network)" in errors


def test_builder_fields_are_refused_with_a_built_in_kind_and_required_with_python() -> None:
    assert errors_of({"name": "a", "model": {"builder": "net.py:build", "args": {"w": 1}}}) == [
        "model.builder: only used with kind python",
        "model.args: only used with kind python",
    ]
    (error,) = errors_of({"name": "a", "model": {"kind": "python"}})
    assert error.startswith("model.builder: required with kind python")


def test_args_must_be_small_plain_data_and_not_a_trial_keyword() -> None:
    (error,) = errors_of(python_spec("user_builders:build", args={"placement": "none"}))
    assert error == "model.args.placement: given to the builder by each trial, not by model.args"
    (error,) = errors_of(python_spec("user_builders:build", args={"blob": "x" * 20_000}))
    assert error.startswith("model.args: must be at most 10,000 bytes as JSON")
    (error,) = errors_of(python_spec("no good:build"))
    assert error.startswith("model.builder: ")


def test_a_python_spec_reads_back_from_its_yaml_and_a_built_in_one_is_dumped_as_before() -> None:
    spec = parse_spec(python_spec("user_builders:build", args={"width": 4}))
    dumped = yaml.safe_load(spec.to_yaml())["model"]
    assert dumped == {
        "kind": "python",
        "builder": "user_builders:build",
        "args": {"width": 4},
        "image_input": False,
    }
    assert parse_spec(yaml.safe_load(spec.to_yaml())) == spec
    assert set(parse_spec({"name": "a"}).model_dump()["model"]) == {
        "kind", "hidden_units", "activation", "kernel_initializer", "output_batchnorm", "kernel_size", "pool",
    }  # fmt: skip


def test_image_input_needs_image_shaped_data() -> None:
    data = {**python_spec("user_builders:build", image_input=True), "dataset": {"source": "iris"}}
    (error,) = errors_of(data)
    assert error.startswith("model.image_input: true needs image-shaped data")


def test_a_file_builder_gets_the_trial_keywords_and_the_specs_args(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(NET)
    spec = parse_spec(python_spec(f"{tmp_path}/net.py:build", args={"width": 5}))
    model = build_model(spec.model, "before_activation", 0.5, (8, 8, 1), 10)
    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer", "Flatten", "Dense", "BatchNormalization", "Activation", "Dropout", "Dense",
    ]  # fmt: skip
    assert model.get_layer("hidden").units == 5
    assert model.get_layer("hidden").use_bias is False
    assert check_builder(spec, (8, 8, 1), 10) == []


def test_a_module_builder_is_imported_by_name() -> None:
    spec = parse_spec(python_spec("user_builders:build"))
    model = build_user_model(spec.model, "after_dropout", 0.25, (6,), 3)
    assert model.output.shape == (None, 3)
    assert [type(layer).__name__ for layer in model.layers][2:5] == [
        "Activation",
        "Dropout",
        "BatchNormalization",
    ]


@pytest.mark.parametrize(
    ("builder", "expected"),
    [
        ("missing.py:build", "model.builder: file not found"),
        ("user_builders:nothing_here", "model.builder: module user_builders has no function 'nothing_here'"),
        ("no_such_module_anywhere:build", "model.builder: no module named 'no_such_module_anywhere'"),
        ("user_builders:raises", "raised ValueError: no network for before_activation"),
        ("user_builders:not_a_model", "returned str, not a keras.Model"),
        ("user_builders:wrong_output", "returned a model whose output is (None, 11); it must be (None, 10)"),
        ("user_builders:ignores_placement", "builds the same layers for placements before_activation, "),
    ],
)
def test_each_broken_builder_is_one_located_error_from_the_library_and_the_cli(
    builder: str, expected: str, tmp_path: Path
) -> None:
    spec = parse_spec(python_spec(builder))
    (problem,) = check_builder(spec, (64,), 10)
    assert problem.startswith("model.builder: ")
    assert expected in problem
    file = tmp_path / "spec.yaml"
    file.write_text(yaml.safe_dump(python_spec(builder)))
    result = runner.invoke(app, ["validate", str(file)], catch_exceptions=False)
    assert result.exit_code == 2
    assert f"{file}: model.builder: " in result.output
    assert expected in result.output.replace("\n", "")
    assert "Traceback" not in result.output


def test_validate_and_show_model_use_the_file_builder_beside_the_spec(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "net.py").write_text(NET)
    file = tmp_path / "spec.yaml"
    file.write_text(yaml.safe_dump(python_spec("models/net.py:build", args={"width": 7})))
    result = runner.invoke(app, ["validate", str(file)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "valid: 8 trials" in result.output
    shown = runner.invoke(
        app, ["show-model", str(file), "--placement", "after_activation"], catch_exceptions=False
    )
    assert shown.exit_code == 0, shown.output
    rows = [line for line in shown.output.splitlines() if "│" in line]
    assert [row.split("│")[3].strip() for row in rows] == [
        "InputLayer", "Flatten", "Dense", "Activation", "BatchNormalization", "Dense",
    ]  # fmt: skip
    assert "(None, 7)" in shown.output


def test_show_model_of_a_broken_builder_is_a_located_error(tmp_path: Path) -> None:
    file = tmp_path / "spec.yaml"
    file.write_text(yaml.safe_dump(python_spec("user_builders:raises")))
    result = runner.invoke(app, ["show-model", str(file)], catch_exceptions=False)
    assert result.exit_code == 2
    assert "model.builder: user_builders:raises(placement='before_activation'" in result.output.replace(
        "\n", ""
    )


def test_the_runner_refuses_a_broken_builder_before_anything_exists(tmp_path: Path) -> None:
    from sweep.runner import run_sweep

    spec = parse_spec(python_spec("user_builders:ignores_placement"))
    with pytest.raises(RefError, match="placement has no effect"):
        run_sweep(spec, runs_dir=tmp_path / "runs", ray_address=None)
    assert not (tmp_path / "runs").exists()


def test_a_builder_model_is_a_keras_model_of_the_specs_classes() -> None:
    spec = parse_spec(python_spec("user_builders:build", args={"width": 3}))
    model = build_model(spec.model, "none", 0.0, (64,), 10)
    assert isinstance(model, keras.Model)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
