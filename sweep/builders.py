"""A user's model builder (`model: {kind: python, builder: REF}`): loaded, called, and checked.

The builder is called with the keywords `placement`, `dropout`, `input_shape` (a tuple),
`n_classes` and the spec's `model.args`, and returns an uncompiled `keras.Model` whose output is
one probability per class; sweep compiles and trains it as it does its own networks.
`check_builder` is what `sweep validate` and the runner (before Ray starts) hold a builder to.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sweep.blocks import block_steps
from sweep.refs import MODELS_GROUP, RefError, load_ref
from sweep.spec import ModelSpec, SweepSpec

if TYPE_CHECKING:
    import keras

FIELD = "model.builder"


def load_builder(model: ModelSpec) -> Callable[..., Any]:
    """The function `model.builder` names, or RefError."""
    if model.builder is None:
        raise RefError(f"{FIELD}: required with kind python")
    return load_ref(model.builder, MODELS_GROUP, FIELD)


def build_user_model(
    model: ModelSpec, placement: str, dropout: float, input_shape: tuple[int, ...], n_classes: int
) -> keras.Model:
    """The builder's network for one trial, or RefError saying what the builder did wrong."""
    import keras

    builder = load_builder(model)
    call = f"{model.builder}(placement={placement!r}, dropout={dropout:g}, input_shape={tuple(input_shape)})"
    try:
        built = builder(
            placement=placement,
            dropout=dropout,
            input_shape=tuple(input_shape),
            n_classes=n_classes,
            **model.args,
        )
    except Exception as err:  # the user's code: any error is theirs to read, located
        raise RefError(f"{FIELD}: {call} raised {type(err).__name__}: {err}") from None
    if not isinstance(built, keras.Model):
        raise RefError(f"{FIELD}: {call} returned {type(built).__name__}, not a keras.Model")
    if len(built.outputs) != 1:
        raise RefError(f"{FIELD}: {call} returned a model with {len(built.outputs)} outputs (one is needed)")
    shape = tuple(built.outputs[0].shape)
    if shape != (None, n_classes):
        raise RefError(
            f"{FIELD}: {call} returned a model whose output is {_shown(shape)}; it must be "
            f"(None, {n_classes}), one probability per class"
        )
    return built


def _shown(shape: tuple[Any, ...]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _rates(spec: SweepSpec) -> list[float]:
    """The smallest and largest dropout rate the sweep can give a builder."""
    dropout = spec.search.dropout
    rates = sorted(set(dropout)) if isinstance(dropout, list) else [dropout.low, dropout.high]
    return sorted({rates[0], min(rates[-1], 0.99)})


def check_builder(spec: SweepSpec, input_shape: tuple[int, ...], n_classes: int) -> list[str]:
    """Every problem of the spec's builder (one line each, `model.builder: ...`); none when it builds
    a fitting network for each placement the spec searches, at its smallest and largest dropout.

    Placements whose blocks differ (at the largest rate) must give different layer sequences: a
    builder that ignores `placement` would make the whole sweep compare a network with itself.
    """
    try:
        load_builder(spec.model)
    except RefError as err:
        return [str(err)]
    _cpu_only()
    sequences: dict[str, tuple[str, ...]] = {}
    for rate in _rates(spec):
        for placement in spec.search.placement:
            try:
                built = build_user_model(spec.model, placement, rate, input_shape, n_classes)
            except RefError as err:  # the first failure; the others are most often the same one
                return [str(err)]
            sequences[placement] = tuple(type(layer).__name__ for layer in built.layers)
    return _placement_without_effect(spec.model, spec.search.placement, sequences, _rates(spec)[-1])


def _cpu_only() -> None:
    """Build on the CPU: on a driver, TensorFlow would otherwise take the memory of every GPU the
    trials on its node need."""
    from sweep.training.keras_setup import import_keras

    import_keras()
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # TensorFlow started already: its devices stay as they are
        tf.config.set_visible_devices([], "GPU")


def _placement_without_effect(
    model: ModelSpec, placements: Sequence[str], sequences: dict[str, tuple[str, ...]], rate: float
) -> list[str]:
    same: dict[tuple[str, ...], list[str]] = {}
    for placement in placements:
        same.setdefault(sequences[placement], []).append(placement)
    problems = []
    for group in same.values():
        if len({block_steps(p, rate) for p in group}) > 1:
            problems.append(
                f"{FIELD}: {model.builder} builds the same layers for placements {', '.join(group)} "
                "(placement has no effect); pass `placement` and `dropout` to sweep.blocks.block "
                "around each weights layer"
            )
    return problems
