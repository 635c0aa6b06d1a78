"""The spec's model section: a built-in network (mlp, cnn), or the user's own builder (python)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import (
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from sweep.refs import parse_ref
from sweep.spec.base import SpecModel

MAX_UNITS = 4096  # per block: 32 blocks of 4096 units are already half a billion weights
MAX_ARGS_BYTES = 10_000  # model.args as JSON: settings for a builder, not data

# Fields of the built-in networks, and of a user's builder: each refused for the other kind.
BUILT_IN_FIELDS = (
    "hidden_units",
    "activation",
    "kernel_initializer",
    "output_batchnorm",
    "kernel_size",
    "pool",
)
BUILDER_FIELDS = ("builder", "args", "image_input")
BUILDER_KEYWORDS = ("placement", "dropout", "input_shape", "n_classes")  # what each trial passes


class ModelSpec(SpecModel):
    """The network: a stack of blocks, each Dense (mlp) or Conv2D (cnn), or what `builder` returns.

    `kind: python` names a function (`builder`, a REF: sweep.refs) called with `placement`,
    `dropout`, `input_shape`, `n_classes` and `args`, returning an uncompiled keras.Model
    (sweep.builders); `image_input` hands it image-shaped rows (H, W, C) instead of flat vectors.
    """

    kind: Literal["mlp", "cnn", "python"] = "mlp"
    hidden_units: list[int] = Field(default_factory=lambda: [64, 64], min_length=1, max_length=32)
    activation: Literal["relu", "tanh", "sigmoid", "elu", "selu", "gelu"] = "relu"
    kernel_initializer: Literal[
        "glorot_uniform",
        "glorot_normal",
        "he_uniform",
        "he_normal",
        "random_uniform",
        "random_normal",
        "lecun_uniform",
        "lecun_normal",
    ] = "glorot_uniform"
    output_batchnorm: bool = False
    kernel_size: int = Field(default=3, ge=1, le=15)
    pool: bool = True
    builder: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    image_input: bool = False

    @field_validator("hidden_units")
    @classmethod
    def _positive_units(cls, units: list[int]) -> list[int]:
        bad = [
            f"[{i}]: must be >= 1 and <= {MAX_UNITS} (got {u})"
            for i, u in enumerate(units)
            if not 1 <= u <= MAX_UNITS
        ]
        if bad:
            raise ValueError("\n".join(bad))
        return units

    @field_validator("builder")
    @classmethod
    def _a_ref(cls, builder: str | None) -> str | None:
        if builder is not None:
            parse_ref(builder)  # ValueError naming the rule
        return builder

    @field_validator("args")
    @classmethod
    def _plain_data(cls, args: dict[str, Any]) -> dict[str, Any]:
        taken = [name for name in BUILDER_KEYWORDS if name in args]
        if taken:
            raise ValueError(f"{', '.join(taken)}: given to the builder by each trial, not by model.args")
        try:
            text = json.dumps(args, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ValueError(f"must be plain YAML values: numbers, text, lists, mappings ({err})") from None
        if len(text) > MAX_ARGS_BYTES:
            raise ValueError(f"must be at most {MAX_ARGS_BYTES:,} bytes as JSON (got {len(text):,})")
        return args

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> ModelSpec:
        given = self.model_fields_set
        if self.kind == "python":
            errors = [
                f"{name}: only used with kind mlp or cnn (the builder makes the network)"
                for name in BUILT_IN_FIELDS
                if name in given
            ]
            if self.builder is None:
                errors.append(
                    "builder: required with kind python "
                    "('file.py:function', 'package.module:function' or a plugin name)"
                )
        else:
            errors = [f"{name}: only used with kind python" for name in BUILDER_FIELDS if name in given]
        if errors:
            raise ValueError("\n".join(errors))
        return self

    @model_serializer(mode="wrap")
    def _only_this_kinds_fields(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        """Each kind's fields alone: a saved spec reads back, and a built-in network's spec (and its
        trial hash) is what it was before builders existed."""
        data = handler(self)
        if isinstance(data, dict):
            dropped = BUILT_IN_FIELDS if self.kind == "python" else BUILDER_FIELDS
            for name in dropped:
                data.pop(name, None)
        return data

    @property
    def image_rows(self) -> bool:
        """Whether the network takes rows shaped as images (H, W, C)."""
        return self.kind == "cnn" or self.image_input
