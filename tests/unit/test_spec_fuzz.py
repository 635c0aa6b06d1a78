"""Property-based fuzzing of the spec loader and `sweep validate` (issue 16).

Whatever the input (random text or bytes, valid specs mutated by dropping and adding keys,
changing types, out-of-range numbers, unicode, huge strings and lists, deep nesting):
- loading raises nothing but SpecError, and every line of it names where (a field path or a
  line and column);
- `sweep validate` never prints a traceback and exits 0 or 2, every error line located;
- every accepted spec builds a Keras model for each of its placements, and survives the
  round trip through the spec.yaml a sweep saves.
Fixed examples (derandomize) so CI sees the same inputs every time.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sweep.cli import app
from sweep.data import load_sweep_data
from sweep.spec import (
    MAX_SEED,
    OPTIMIZER_ARGS,
    PLACEMENTS,
    SpecError,
    SweepSpec,
    load_spec,
    parse_spec,
    parse_spec_text,
    read_spec_file,
)


def fuzz(examples: int) -> settings:
    """Reproducible (derandomized, no example database) and without deadlines."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


# Where an error is: a line and column, a byte, an override, a field path (keys that are not
# names are quoted: search['a b']), or the whole file (too large, not a mapping).
LOCATED = re.compile(
    r"(line \d+, column \d+: "
    r"|byte \d+: "
    r"|--set .*: "
    r"|(?:[A-Za-z_]\w*|\[.+?\])(?:\.[A-Za-z_]\w*|\[.+?\])*: "
    r"|larger than \d+ KiB: not a spec$"
    r"|the top level must be a mapping of fields \(got \w+\)$"
    r"|\.\.\. and \d+ more errors$)",
    re.S,
)


def assert_located(lines: list[str]) -> None:
    assert lines, "a rejection says why"
    for line in lines:
        assert LOCATED.match(line), f"no location in {line!r}"


# --- data files the generated specs may name, beside the spec files -------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    rows = "".join(f"{a:.3f},{b:.3f},{c:.3f},{'yes' if a > b else 'no'}\n" for a, b, c in x)
    (path / "data.csv").write_text("a,b,c,label\n" + rows)
    np.savez(path / "images.npz", x=rng.normal(size=(60, 6, 6)), y=np.arange(60) % 3)
    return path


def write(folder: Path, data: Any, kind: str) -> Path:
    path = folder / f"spec.{kind}"
    if kind == "json":
        path.write_text(json.dumps(data))
    else:
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


# --- valid specs, from the spec's own fields ---------------------------------------------

NAMES = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,12}[a-z0-9])?", fullmatch=True)
RATES = st.floats(0, 0.9, allow_nan=False).map(lambda r: round(r, 3))
OPTIONAL_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "momentum": st.floats(0, 0.99),
    "nesterov": st.booleans(),
    "beta_1": st.floats(0, 0.99),
    "beta_2": st.floats(0, 0.999),
    "epsilon": st.floats(1e-10, 1e-3),
    "amsgrad": st.booleans(),
    "rho": st.floats(0, 0.99),
    "centered": st.booleans(),
    "initial_accumulator_value": st.floats(0, 1),
}


@st.composite
def optimizers(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(OPTIMIZER_ARGS)))
    out: dict[str, Any] = {"name": name, "learning_rate": draw(st.sampled_from([0.1, 0.01, 0.001]))}
    for arg in draw(st.lists(st.sampled_from(OPTIMIZER_ARGS[name]), unique=True, max_size=2)):
        out[arg] = draw(OPTIONAL_VALUES[arg])
    if draw(st.booleans()):
        out["decay"] = draw(st.sampled_from([0.0, 1e-6, 1e-3]))
    return out


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    source = draw(
        st.sampled_from(["synthetic", "synthetic", "digits", "iris", "wine", "breast_cancer", "csv", "npz"])
    )
    dataset: dict[str, Any] = {"source": source}
    classes = {"synthetic": 2, "digits": 10, "iris": 3, "wine": 3, "breast_cancer": 2, "csv": 2, "npz": 3}[
        source
    ]
    if source == "synthetic":
        classes = draw(st.integers(2, 4))
        dataset |= {"n_samples": draw(st.integers(40, 300)), "n_features": draw(st.integers(4, 12))}
        dataset["n_classes"] = classes
    elif source == "csv":
        dataset |= {"path": "data.csv", "target": "label"}
    elif source == "npz":
        dataset["path"] = "images.npz"
    if draw(st.booleans()):
        dataset["validation_split"] = draw(st.sampled_from([0.1, 0.2, 0.25, 0.5]))
    if draw(st.booleans()):
        dataset["seed"] = draw(st.integers(0, MAX_SEED))
    model: dict[str, Any] = {
        "kind": "cnn" if source in ("digits", "npz") and draw(st.booleans()) else "mlp",
        "hidden_units": draw(st.lists(st.integers(1, 8), min_size=1, max_size=3)),
        "activation": draw(st.sampled_from(["relu", "tanh", "sigmoid", "elu", "selu", "gelu"])),
        "output_batchnorm": draw(st.booleans()),
    }
    if model["kind"] == "cnn":
        model |= {"kernel_size": draw(st.integers(1, 5)), "pool": draw(st.booleans())}
    algorithm = draw(st.sampled_from(["grid", "random", "optuna"]))
    opts = draw(st.lists(optimizers(), min_size=1, max_size=2, unique_by=lambda o: o["name"]))
    dropout: Any = draw(st.lists(RATES, min_size=1, max_size=3, unique=True))
    if algorithm == "optuna" and draw(st.booleans()):
        low = draw(st.sampled_from([0.0, 0.1, 0.2]))
        dropout = {"low": low, "high": low + draw(st.sampled_from([0.1, 0.5]))}
    strategy: dict[str, Any] = {"algorithm": algorithm}
    if algorithm != "grid":
        blocks = len(dropout) * len(opts) if isinstance(dropout, list) else 4
        strategy["num_samples"] = draw(st.integers(1, blocks))
    metric = draw(st.sampled_from(["val_accuracy", "val_loss", "accuracy", "loss"]))
    strategy |= {"metric": metric, "mode": "min" if metric.endswith("loss") else "max"}
    strategy["scheduler"] = draw(st.sampled_from(["fifo", "asha"]))
    loss = "binary_crossentropy" if classes == 2 and draw(st.booleans()) else "categorical_crossentropy"
    return {
        "name": draw(NAMES),
        "dataset": dataset,
        "model": model,
        "search": {
            "placement": draw(st.lists(st.sampled_from(PLACEMENTS), min_size=1, max_size=4, unique=True)),
            "dropout": dropout,
            "optimizer": opts,
            "seeds": draw(st.integers(1, 3)),
        },
        "training": {"epochs": draw(st.integers(1, 5)), "batch_size": draw(st.integers(1, 16)), "loss": loss},
        "strategy": strategy,
        "resources": {
            "cpus_per_trial": draw(st.sampled_from([0.5, 1, 2])),
            "max_failures": draw(st.integers(0, 3)),
        },
        "tracking": {"experiment": draw(st.text(min_size=1, max_size=20))},
    }


# --- mutations ------------------------------------------------------------------------------


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"k": [value]}
    return value


HOSTILE: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 50),
    st.sampled_from([-1, 0, 1, 2, 2**31, 2**32, 2**63, -(2**63), 10**30, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -0.0, 1e-320, 1e308]),
    st.text(max_size=20),
    st.sampled_from(
        ["2024-06-01", "yes", "on", "null", "~", ".inf", "0x1f", "*a", "<<", "é\u202e\x1b[31m", "\ufeff"]
    ),
    st.just("x" * 5_000),
    st.just([0.1] * 300),
    st.just(_nested(15)),
    st.lists(st.integers(-1, 3), max_size=4),
    st.dictionaries(st.text(max_size=6), st.integers(-1, 3), max_size=3),
)
KEYS = st.one_of(
    st.text(max_size=8),
    st.sampled_from(sorted({*SweepSpec.model_fields, "n_samples", "low", "high", "name", "label", "path"})),
    st.integers(0, 3),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:50]):
            yield from _paths(value, (*prefix, i))


def _replace(root: Any, path: tuple[Any, ...], make: Any) -> Any:
    """`root` with the value at `path` replaced by make(old); make returns _DROP to delete it."""
    if not path:
        return make(root)
    parent = root
    for part in path[:-1]:
        parent = parent[part]
    new = make(parent[path[-1]])
    if new is _DROP:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return root


_DROP = object()


@st.composite
def mutated_specs(draw: st.DrawFn) -> Any:
    spec: Any = copy.deepcopy(draw(valid_specs()))
    for _ in range(draw(st.integers(0, 3))):  # none: the valid spec itself, which must build
        path = draw(st.sampled_from(list(_paths(spec))))
        op = draw(st.sampled_from(["drop", "add", "replace", "replace", "retype"]))
        if op == "drop" and path:
            spec = _replace(spec, path, lambda _old: _DROP)
        elif op == "add":
            key, value = draw(KEYS), copy.deepcopy(draw(HOSTILE))
            spec = _replace(
                spec, path, lambda old, k=key, v=value: {**old, k: v} if isinstance(old, dict) else v
            )
        elif op == "retype":
            shape = draw(st.sampled_from([str, lambda v: [v], lambda v: {"value": v}]))
            spec = _replace(spec, path, shape)
        else:
            value = copy.deepcopy(draw(HOSTILE))
            spec = _replace(spec, path, lambda _old, v=value: v)
    return spec


# --- the model each accepted spec builds ---------------------------------------------------

_BUILTIN_SHAPES = {"digits": (64,), "iris": (4,), "wine": (13,), "breast_cancer": (30,)}


def assert_builds_every_placement(spec: SweepSpec) -> None:
    from sweep.models import build_model

    if spec.dataset.path is not None:
        data = load_sweep_data(spec)
        shape, classes = data.input_shape, data.n_classes
    elif spec.dataset.source == "synthetic":
        shape, classes = (spec.dataset.n_features or 14,), spec.dataset.n_classes or 2
    else:
        shape = (8, 8, 1) if spec.model.kind == "cnn" else _BUILTIN_SHAPES[spec.dataset.source]
        classes = spec.dataset.known_classes or 2
    dropout = spec.search.dropout
    rate = max(dropout) if isinstance(dropout, list) else dropout.low
    for placement in spec.search.placement:
        model = build_model(spec.model, placement, rate, shape, classes)
        assert model.output_shape == (None, classes)
    # What a sweep saves as spec.yaml (and `sweep resume` reads back) is the same spec.
    assert parse_spec(parse_spec_text(spec.to_yaml())) == spec


# --- the properties -------------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        "name", "name: x\n", "dataset", "search", "dropout", "placement", "source", "csv", "x", "é", "😀",
        ":", ": ", "-", "- ", "[", "]", "{", "}", ",", "\n", "  ", "\t", "'", '"', "#", "?", "|", ">",
        "&a ", "*a", "!!set ", "!!binary ", "!!python/object:os.system ", "!!omap ", "!!str ", "<<: ",
        "---\n",
        "...\n", "%YAML 1.1\n", "2024-06-01", "12:30:00", ".nan", ".inf", "1e999", "9" * 5000, "\x00",
        "\ufeff", "\x85", "0.5", "-1", "true", "null", "~", "{name: x, search: {dropout: [",
    ]
)  # fmt: skip
YAMLISH = st.lists(st.one_of(FRAGMENTS, st.text(max_size=6)), max_size=40).map("".join)
JSON_TOKENS = ['{"name": "x"', "{", "}", "[", "]", ",", ":", '"a"', "1", "NaN", "1e999", "-", "\n"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=5),
    lambda c: st.lists(c) | st.dictionaries(st.text(max_size=5), c),
)
JSONISH = st.one_of(st.lists(st.sampled_from(JSON_TOKENS)).map("".join), JSON_VALUES.map(json.dumps))


@fuzz(300)
@given(text=st.one_of(YAMLISH, JSONISH), suffix=st.sampled_from([".yaml", ".json"]))
def test_any_text_is_a_spec_or_a_located_spec_error(text: str, suffix: str) -> None:
    try:
        parse_spec(parse_spec_text(text, suffix))
    except SpecError as err:
        assert_located(err.errors)


@fuzz(100)
@given(content=st.one_of(st.binary(max_size=200), YAMLISH.map(lambda t: t.encode("utf-8", "replace"))))
def test_any_bytes_in_a_file_are_a_spec_or_a_located_spec_error(folder: Path, content: bytes) -> None:
    path = folder / "bytes.yaml"
    path.write_bytes(content)
    try:
        read_spec_file(path)
    except SpecError as err:
        assert err.source == str(path)
        assert_located(err.errors)


PYTHON_DATA = st.recursive(
    HOSTILE,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)


@fuzz(300)
@given(data=st.one_of(mutated_specs(), PYTHON_DATA))
def test_any_data_validates_or_is_a_located_spec_error(data: Any) -> None:
    try:
        parse_spec(data)
    except SpecError as err:
        assert_located(err.errors)


@fuzz(20)
@given(data=valid_specs(), kind=st.sampled_from(["yaml", "json"]))
def test_every_generated_valid_spec_is_accepted_and_builds_each_placement(
    folder: Path, data: Any, kind: str
) -> None:
    spec = load_spec(write(folder, data, kind))
    assert_builds_every_placement(spec)


OVERRIDE_KEYS = ["search.seeds", "training.epochs", "model.hidden_units", "dataset", "name", "x.y", "="]
OVERRIDE_VALUES = ["[1, 2]", "{a: 1}", "*a", "2024-06-01", "!!set {a}", "[&a 1, *a]", ".nan"]
OVERRIDES = st.lists(
    st.one_of(
        st.text(max_size=12),
        st.tuples(
            st.sampled_from(OVERRIDE_KEYS), st.one_of(st.text(max_size=12), st.sampled_from(OVERRIDE_VALUES))
        ).map("=".join),
    ),
    max_size=2,
)


@fuzz(120)
@given(data=mutated_specs(), kind=st.sampled_from(["yaml", "json"]), overrides=OVERRIDES)
def test_sweep_validate_exits_0_or_2_with_located_errors_never_a_traceback(
    folder: Path, data: Any, kind: str, overrides: list[str]
) -> None:
    path = write(folder, data, kind)
    result = CliRunner().invoke(app, ["validate", str(path), *(f"--set={o}" for o in overrides)])
    assert result.exit_code in (0, 2), (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        assert result.output.startswith("valid: ")
        assert_builds_every_placement(load_spec(path, overrides))
        return
    errors = [line.removeprefix("error ") for line in result.output.splitlines() if line.startswith("error ")]
    assert errors, result.output
    # `FILE: where: what` for the spec and its data, `--set ...: what` for an override
    assert_located([e.removeprefix(f"{path}: ") for e in errors])
