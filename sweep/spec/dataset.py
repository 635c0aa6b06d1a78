"""The `dataset` section: where the data comes from, how it is split, and the limits checked
before anything is loaded."""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from sweep.refs import parse_ref
from sweep.spec.base import SpecModel

# Classes and rows of the data sets scikit-learn ships, to check a spec before anything is loaded.
BUILTIN_CLASSES = {"digits": 10, "breast_cancer": 2, "wine": 3, "iris": 3}
BUILTIN_ROWS = {"digits": 1797, "breast_cancer": 569, "wine": 178, "iris": 150}
# Classes of the data sets `source: keras` reads from Keras' cache (CIFAR-100: its 100 fine labels).
KERAS_CLASSES = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10, "cifar100": 100}
IMAGE_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}

MAX_FEATURES = 100_000  # per row, generated or read from a file
MAX_CLASSES = 1000
MAX_GENERATED_VALUES = 100_000_000  # n_samples x n_features of synthetic data (800 MB as float64)
MAX_SEED = 2**32 - 1  # what numpy and scikit-learn accept as a random state
MAX_LOADED_VALUES = 500_000_000  # rows x values a row, from any source (2 GB as float32)
MAX_ARGS_BYTES = 65_536  # dataset.args as JSON

# Each field a source uses, and which sources require it; every other source refuses it.
_USED_BY = {
    "n_samples": ("synthetic",),
    "n_features": ("synthetic",),
    "n_classes": ("synthetic",),
    "path": ("csv", "npz", "image_folder"),
    "target": ("csv",),
    "loader": ("python",),
    "args": ("python",),
    "name": ("keras",),
    "image_size": ("image_folder",),
    "color_mode": ("image_folder",),
}
_REQUIRED = {
    "csv": (("path", ""), ("target", " (the label column)")),
    "npz": (("path", ""),),
    "image_folder": (("path", " (the folder of class folders)"), ("image_size", " ([height, width])")),
    "python": (("loader", " ('file.py:function', 'package.module:function' or a plugin name)"),),
    "keras": (("name", " (mnist, fashion_mnist, cifar10 or cifar100)"),),
}


def split_sizes(rows: int, validation_split: float, test_split: float = 0.0) -> tuple[int, int, int]:
    """(training, validation, test) rows, each split counted as scikit-learn's train_test_split does."""
    test = math.ceil(rows * test_split)
    val = math.ceil(rows * validation_split)
    return rows - val - test, val, test


def row_problems(
    rows: int,
    dataset: DatasetSpec,
    batch_size: int,
    what: str,
    classes: int | None = None,
    smallest_class: int | None = None,
) -> list[str]:
    """Why `rows` rows cannot be split and trained in batches of `batch_size`, one line each.

    With a test split, `classes` and `smallest_class` (rows of the rarest class), where known, are
    checked too: the stratified splits need a row of every class in each part.
    """
    v, t = dataset.validation_split, dataset.test_split
    train, val, test = split_sizes(rows, v, t)
    splits = f"validation_split {v:g}" + (f", test_split {t:g}" if t else "")
    if train < 2:
        given = f"{v:g}" + (f" and test_split {t:g}" if t else "")
        return [
            f"dataset.validation_split: {given} of the {rows} rows of {what} "
            f"leave{'' if t else 's'} {max(train, 0)} for training (at least 2 are needed)"
        ]
    if train < batch_size:
        return [
            f"training.batch_size: {batch_size} is more than the {train} training rows of {what} "
            f"({rows} rows, {splits}); use at most {train}"
        ]
    problems = []
    if t and classes is not None:
        for field, size, fraction in (("test_split", test, t), ("validation_split", val, v)):
            if size < classes:
                problems.append(
                    f"dataset.{field}: {fraction:g} of the {rows} rows of {what} is {size} rows, fewer "
                    f"than its {classes} classes (a stratified split needs a row of each class)"
                )
    if t and smallest_class is not None and smallest_class < 3:
        problems.append(
            f"dataset.test_split: the smallest class of {what} has {smallest_class} rows; a test split "
            "needs at least 3 a class (one each for training, validation and test)"
        )
    return problems


def _either(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


class DatasetSpec(SpecModel):
    """Where the data comes from and how it is split."""

    source: Literal[
        "synthetic",
        "digits",
        "breast_cancer",
        "wine",
        "iris",
        "csv",
        "npz",
        "image_folder",
        "keras",
        "python",
    ] = "synthetic"
    n_samples: int | None = Field(default=None, ge=20, le=10_000_000)
    n_features: int | None = Field(default=None, ge=1, le=MAX_FEATURES)
    n_classes: int | None = Field(default=None, ge=2, le=MAX_CLASSES)
    path: str | None = None
    target: str | None = None
    # source python: the function returning (x, y), called with `args` as keyword arguments
    loader: str | None = None
    args: dict[str, Any] | None = None
    # source keras: which of Keras' data sets, read from its cache
    name: Literal["mnist", "fashion_mnist", "cifar10", "cifar100"] | None = None
    # source image_folder: every image converted to this size ([height, width]) and colour mode
    image_size: tuple[int, int] | None = None
    color_mode: Literal["grayscale", "rgb", "rgba"] | None = None
    # At most this many rows (any source but synthetic), chosen stratified by `seed` before the splits.
    max_rows: int | None = Field(default=None, ge=10, le=10_000_000)
    validation_split: float = Field(default=0.2, gt=0, lt=1)
    # Rows held out for the final evaluation only, carved off before the validation split.
    test_split: float = Field(default=0.0, ge=0, lt=1)
    # Draw the validation and test rows again for each trial seed (so intervals include split
    # variance; the default, as every source here is loaded whole and split by the sweep);
    # false: dataset.seed fixes them for the whole sweep and the verdict speaks for those rows.
    split_per_seed: bool = True
    seed: int = Field(default=0, ge=0, le=MAX_SEED)

    @field_validator("loader")
    @classmethod
    def _loader_is_a_ref(cls, value: str | None) -> str | None:
        if value is not None:
            parse_ref(value)  # its ValueError names the rule
        return value

    @field_validator("args")
    @classmethod
    def _args_are_plain_data(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                size = len(json.dumps(value))
            except (TypeError, ValueError):
                raise ValueError("must be plain data (mappings, lists, text, numbers)") from None
            if size > MAX_ARGS_BYTES:
                raise ValueError(f"{size:,} bytes as JSON (at most {MAX_ARGS_BYTES:,})")
        return value

    @field_validator("image_size")
    @classmethod
    def _image_size_is_positive(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and min(value) < 1:
            raise ValueError(f"height and width must be at least 1 (got {list(value)})")
        return value

    @model_validator(mode="after")
    def _fields_fit_source(self) -> DatasetSpec:
        errors = [
            f"{field}: only used with source {_either(sources)} (source is {self.source})"
            for field, sources in _USED_BY.items()
            if self.source not in sources and getattr(self, field) is not None
        ]
        errors += [
            f"{field}: required when source is {self.source}{why}"
            for field, why in _REQUIRED.get(self.source, ())
            if not getattr(self, field)
        ]
        if self.source == "synthetic" and self.max_rows is not None:
            errors.append("max_rows: not used with source synthetic (n_samples sets its rows)")
        if self.source == "synthetic":
            errors += self._synthetic_problems()
        if self.image_size is not None and self.image_values > MAX_FEATURES:
            errors.append(
                f"image_size: {self.image_size[0]}x{self.image_size[1]} {self.color_mode or 'rgb'} "
                f"images are {self.image_values:,} values a row (at most {MAX_FEATURES:,})"
            )
        held_out = self.validation_split + self.test_split
        if self.test_split and held_out >= 0.9:
            errors.append(
                f"test_split: {self.test_split:g} with validation_split {self.validation_split:g} "
                f"holds out {held_out:g} of the rows; the two must total less than 0.9"
            )
        if errors:
            raise ValueError("\n".join(errors))
        return self

    def _synthetic_problems(self) -> list[str]:
        samples, features, classes = self.known_rows or 0, self.n_features or 14, self.known_classes or 2
        errors = []
        if self.informative_features > features:
            errors.append(
                f"n_features: {features} features cannot separate {classes} classes "
                f"(at least {self.informative_features} are needed)"
            )
        if samples < 2 * classes:
            errors.append(f"n_samples: {samples} rows cannot hold {classes} classes (at least {2 * classes})")
        if samples * features > MAX_GENERATED_VALUES:
            errors.append(
                f"n_samples: {samples} rows of {features} features are {samples * features:,} values "
                f"(at most {MAX_GENERATED_VALUES:,} are generated)"
            )
        return errors

    @property
    def known_classes(self) -> int | None:
        """The class count when it is known before loading the data."""
        if self.source == "synthetic":
            return self.n_classes or 2
        if self.source == "keras" and self.name is not None:
            return KERAS_CLASSES[self.name]
        return BUILTIN_CLASSES.get(self.source)

    @property
    def known_rows(self) -> int | None:
        """The row count when it is known before loading the data."""
        if self.source == "synthetic":
            return self.n_samples or 1000
        rows = BUILTIN_ROWS.get(self.source)
        return rows if rows is None or self.max_rows is None else min(rows, self.max_rows)

    @property
    def image_values(self) -> int:
        """Values a row of image_folder data: height x width x channels."""
        height, width = self.image_size or (0, 0)
        return height * width * IMAGE_CHANNELS[self.color_mode or "rgb"]

    @property
    def reads_data(self) -> bool:
        """Whether loading reads files or runs code (what `sweep validate` must try before a run)."""
        return self.source in ("csv", "npz", "image_folder", "keras", "python")

    @property
    def informative_features(self) -> int:
        """Informative features of synthetic data: about half, and room for two clusters a class."""
        features, classes = self.n_features or 14, self.n_classes or 2
        informative = max(2, min(features, features // 2 + 1))
        return max(informative, math.ceil(math.log2(2 * classes)))
