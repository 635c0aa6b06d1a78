"""The sweep spec: pydantic models, YAML/JSON loading and readable error messages."""

from __future__ import annotations

import json
import math
import re
import types
import typing
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)

Placement = Literal["before_activation", "after_activation", "after_dropout", "none"]
PLACEMENTS: tuple[Placement, ...] = ("before_activation", "after_activation", "after_dropout", "none")

# Keras 3 optimizer arguments each name accepts; `decay` (legacy lr / (1 + decay * step)) and
# `weight_decay` are accepted by all of them.
OPTIMIZER_ARGS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum", "nesterov"),
    "adam": ("beta_1", "beta_2", "epsilon", "amsgrad"),
    "adamw": ("beta_1", "beta_2", "epsilon", "amsgrad"),
    "rmsprop": ("rho", "momentum", "epsilon", "centered"),
    "nadam": ("beta_1", "beta_2", "epsilon"),
    "adagrad": ("initial_accumulator_value", "epsilon"),
}
_COMMON_OPTIMIZER_ARGS = ("learning_rate", "decay", "weight_decay")
_DEFAULT_LEARNING_RATE = {"sgd": 0.01, "adagrad": 0.001}

# Classes and rows of the data sets scikit-learn ships, to check a spec before anything is loaded.
BUILTIN_CLASSES = {"digits": 10, "breast_cancer": 2, "wine": 3, "iris": 3}
BUILTIN_ROWS = {"digits": 1797, "breast_cancer": 569, "wine": 178, "iris": 150}

MAX_FEATURES = 100_000  # per row, generated or read from a file
MAX_CLASSES = 1000
MAX_UNITS = 4096  # per block: 32 blocks of 4096 units are already half a billion weights
MAX_GENERATED_VALUES = 100_000_000  # n_samples x n_features of synthetic data (800 MB as float64)
MAX_SEED = 2**32 - 1  # what numpy and scikit-learn accept as a random state


class SpecError(ValueError):
    """A spec that cannot be used; `errors` holds one readable line per problem."""

    def __init__(self, errors: Sequence[str], source: str | None = None) -> None:
        self.errors = list(errors)
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + "; ".join(self.errors))


class _Model(BaseModel):
    # inf and nan are no setting's value (YAML reads .inf and .nan, JSON NaN and 1e999).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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


class DatasetSpec(_Model):
    """Where the data comes from and how it is split."""

    source: Literal["synthetic", "digits", "breast_cancer", "wine", "iris", "csv", "npz"] = "synthetic"
    n_samples: int | None = Field(default=None, ge=20, le=10_000_000)
    n_features: int | None = Field(default=None, ge=1, le=MAX_FEATURES)
    n_classes: int | None = Field(default=None, ge=2, le=MAX_CLASSES)
    path: str | None = None
    target: str | None = None
    validation_split: float = Field(default=0.2, gt=0, lt=1)
    # Rows held out for the final evaluation only, carved off before the validation split.
    test_split: float = Field(default=0.0, ge=0, lt=1)
    # Draw the validation and test rows again for each trial seed (so intervals include split
    # variance; the default, as every source here is loaded whole and split by the sweep);
    # false: dataset.seed fixes them for the whole sweep and the verdict speaks for those rows.
    split_per_seed: bool = True
    seed: int = Field(default=0, ge=0, le=MAX_SEED)

    @model_validator(mode="after")
    def _fields_fit_source(self) -> DatasetSpec:
        synthetic_only = ("n_samples", "n_features", "n_classes")
        errors = []
        if self.source != "synthetic":
            errors += [
                f"{f}: only used with source synthetic (source is {self.source})"
                for f in synthetic_only
                if getattr(self, f) is not None
            ]
        if self.source in ("csv", "npz") and not self.path:
            errors.append(f"path: required when source is {self.source}")
        if self.source not in ("csv", "npz") and self.path is not None:
            errors.append(f"path: only used with source csv or npz (source is {self.source})")
        if self.source == "csv" and not self.target:
            errors.append("target: required when source is csv (the label column)")
        if self.source != "csv" and self.target is not None:
            errors.append(f"target: only used with source csv (source is {self.source})")
        if self.source == "synthetic":
            errors += self._synthetic_problems()
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
        return BUILTIN_CLASSES.get(self.source)

    @property
    def known_rows(self) -> int | None:
        """The row count when it is known before loading the data."""
        if self.source == "synthetic":
            return self.n_samples or 1000
        return BUILTIN_ROWS.get(self.source)

    @property
    def informative_features(self) -> int:
        """Informative features of synthetic data: about half, and room for two clusters a class."""
        features, classes = self.n_features or 14, self.n_classes or 2
        informative = max(2, min(features, features // 2 + 1))
        return max(informative, math.ceil(math.log2(2 * classes)))


class ModelSpec(_Model):
    """The network: a stack of blocks, each Dense (mlp) or Conv2D (cnn)."""

    kind: Literal["mlp", "cnn"] = "mlp"
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


class Range(_Model):
    """A continuous range for random and optuna search."""

    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"low must be < high (got low={self.low}, high={self.high})")
        return self


class OptimizerSpec(_Model):
    """One optimizer with its settings; `label` tells apart two of the same name."""

    name: Literal["sgd", "adam", "adamw", "rmsprop", "nadam", "adagrad"]
    label: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_.-]{0,39}$")
    learning_rate: float | None = Field(default=None, gt=0, le=1e6)
    decay: float = Field(default=0.0, ge=0)
    weight_decay: float | None = Field(default=None, ge=0)
    momentum: float | None = Field(default=None, ge=0, lt=1)
    nesterov: bool | None = None
    beta_1: float | None = Field(default=None, ge=0, lt=1)
    beta_2: float | None = Field(default=None, ge=0, lt=1)
    epsilon: float | None = Field(default=None, gt=0)
    amsgrad: bool | None = None
    rho: float | None = Field(default=None, ge=0, lt=1)
    centered: bool | None = None
    initial_accumulator_value: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _arguments_fit_name(self) -> OptimizerSpec:
        allowed = OPTIMIZER_ARGS[self.name] + _COMMON_OPTIMIZER_ARGS
        others = {a for args in OPTIMIZER_ARGS.values() for a in args} - set(allowed)
        given = [a for a in sorted(others) if getattr(self, a) is not None]
        if given:
            raise ValueError(
                "\n".join(
                    f"{a}: not an argument of {self.name} (allowed: {', '.join(allowed)})" for a in given
                )
            )
        return self

    @property
    def settings(self) -> dict[str, Any]:
        """The arguments that were set, learning rate included (Keras default if unset)."""
        out: dict[str, Any] = {
            "learning_rate": self.learning_rate or _DEFAULT_LEARNING_RATE.get(self.name, 0.001)
        }
        for arg in OPTIMIZER_ARGS[self.name] + ("decay", "weight_decay"):
            value = getattr(self, arg)
            if value is not None and not (arg == "decay" and value == 0):
                out[arg] = value
        return out


DropoutAxis = list[float] | Range


class AdaptiveSeeds(_Model):
    """Seeds added only where a comparison is undecided, up to `max` (sweep.adaptive)."""

    max: int = Field(ge=2, le=1000)
    step: int = Field(default=1, ge=1, le=100)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)  # over every look and comparison together


class SearchSpec(_Model):
    """The axes of the search: placement, dropout, optimizer and seeds.

    `seeds: {min: 3, max: 20, step: 1}` is the short form of `seeds: 3` with
    `adaptive: {max: 20, step: 1}`.
    """

    placement: list[Placement] = Field(default_factory=lambda: list(PLACEMENTS), min_length=1)
    dropout: DropoutAxis = Field(default_factory=lambda: [0.0, 0.25, 0.5])
    # validate_default: the default is labelled too, so the spec.yaml a sweep saves reads back equal
    optimizer: list[OptimizerSpec] = Field(
        default_factory=lambda: [OptimizerSpec(name="adam")],
        min_length=1,
        max_length=100,
        validate_default=True,
    )
    seeds: int = Field(default=3, ge=1, le=1000)
    adaptive: AdaptiveSeeds | None = None

    @model_validator(mode="before")
    @classmethod
    def _seed_range(cls, data: Any) -> Any:
        seeds = data.get("seeds") if isinstance(data, dict) else None
        if isinstance(seeds, dict) and "adaptive" not in data:
            extra = sorted(map(str, set(seeds) - {"min", "max", "step", "alpha"}))
            if extra or "min" not in seeds or "max" not in seeds:
                raise ValueError(
                    "seeds: a number, or {min, max} with optional step and alpha for adaptive seeds"
                    + (f" (unknown: {', '.join(extra)})" if extra else "")
                )
            rest = {k: v for k, v in seeds.items() if k != "min"}
            return {**data, "seeds": seeds["min"], "adaptive": rest}
        return data

    @model_validator(mode="after")
    def _adaptive_above_min(self) -> SearchSpec:
        if self.adaptive is not None and self.adaptive.max <= self.seeds:
            raise ValueError(f"seeds: max must exceed min (got min={self.seeds}, max={self.adaptive.max})")
        return self

    @field_validator("placement")
    @classmethod
    def _unique_placements(cls, placements: list[str]) -> list[str]:
        dupes = sorted(p for p, n in Counter(placements).items() if n > 1)
        if dupes:
            raise ValueError(f"each placement at most once (repeated: {', '.join(dupes)})")
        return placements

    @field_validator("dropout")
    @classmethod
    def _dropout_rates(cls, dropout: DropoutAxis) -> DropoutAxis:
        if isinstance(dropout, Range):
            if dropout.low < 0 or dropout.high >= 1:
                raise ValueError(f"range must lie in [0, 1) (got low={dropout.low}, high={dropout.high})")
            return dropout
        if not dropout:
            raise ValueError("must list at least one rate")
        if len(dropout) > 100:
            raise ValueError(f"at most 100 rates (got {len(dropout)})")
        bad = [
            f"[{i}]: must be >= 0 and < 1 (got {d})"
            for i, d in enumerate(dropout)
            if not (0 <= d < 1) or math.isnan(d)
        ]
        if bad:
            raise ValueError("\n".join(bad))
        if len(set(dropout)) != len(dropout):
            raise ValueError(f"rates must be distinct (got {dropout})")
        return dropout

    @field_validator("optimizer")
    @classmethod
    def _label_optimizers(cls, optimizers: list[OptimizerSpec]) -> list[OptimizerSpec]:
        names = Counter(o.name for o in optimizers)
        labelled = []
        for o in optimizers:
            label = o.label
            if label is None:
                label = o.name if names[o.name] == 1 else f"{o.name}-lr{o.settings['learning_rate']:g}"
            labelled.append(o.model_copy(update={"label": label}))
        labels = Counter(o.label for o in labelled)
        dupes = sorted(str(lb) for lb, n in labels.items() if lb is not None and n > 1)
        if dupes:
            raise ValueError(
                f"two optimizers share the label {', '.join(dupes)}; give each a distinct `label`"
            )
        return labelled

    @property
    def optimizers(self) -> dict[str, OptimizerSpec]:
        """Optimizers by label."""
        return {o.label or o.name: o for o in self.optimizer}


class TrainingSpec(_Model):
    epochs: int = Field(default=20, ge=1, le=10_000)
    batch_size: int = Field(default=32, ge=1, le=65_536)
    loss: Literal["categorical_crossentropy", "binary_crossentropy"] = "categorical_crossentropy"
    target_accuracy: float | None = Field(default=None, gt=0, le=1)
    steps_per_execution: int | Literal["epoch"] = "epoch"

    @field_validator("steps_per_execution")
    @classmethod
    def _positive_steps(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"must be >= 1 or 'epoch' (got {value})")
        return value


class StrategySpec(_Model):
    algorithm: Literal["grid", "random", "optuna"] = "grid"
    # random / optuna: blocks to draw; each block (dropout, optimizer) runs every placement x seed.
    num_samples: int = Field(default=1, ge=1, le=100_000)
    # random: the draws come from this seed, so a resumed sweep draws the same blocks.
    search_seed: int = Field(default=0, ge=0, le=2**32 - 1)
    # random / optuna. shared: every placement runs on every drawn block (paired comparisons).
    # per_placement: each placement tuned on its own (num_samples draws, one seed each), then its
    # best block re-run on `search.seeds` fresh seeds; the verdict compares those re-runs.
    tuning: Literal["shared", "per_placement"] = "shared"
    scheduler: Literal["fifo", "asha"] = "fifo"
    grace_period: int = Field(default=2, ge=1)
    reduction_factor: int = Field(default=2, ge=2)
    metric: Literal["val_accuracy", "val_loss", "accuracy", "loss"] = "val_accuracy"
    mode: Literal["max", "min"] = "max"

    @model_validator(mode="after")
    def _mode_fits_metric(self) -> StrategySpec:
        expected = "min" if self.metric.endswith("loss") else "max"
        if self.mode != expected:
            raise ValueError(f"mode: {self.metric} should be {expected}imised (got {self.mode})")
        return self


class ResourcesSpec(_Model):
    cpus_per_trial: float = Field(default=1, gt=0, le=256)
    gpus_per_trial: float = Field(default=0, ge=0, le=16)
    max_concurrent_trials: int | None = Field(default=None, ge=1)
    # Extra attempts for a trial whose worker or node died (a diverged trial is never retried).
    max_failures: int = Field(default=2, ge=0, le=100)

    @field_validator("gpus_per_trial")
    @classmethod
    def _whole_or_fraction(cls, gpus: float) -> float:
        if gpus > 1 and gpus != int(gpus):
            raise ValueError(f"must be a fraction of one GPU or a whole number (got {gpus})")
        return gpus


class TrackingSpec(_Model):
    experiment: str = Field(default="bn-placement", min_length=1, max_length=200)
    uri: str | None = None


class AnalysisSpec(_Model):
    """How the report decides, declared before the data is seen."""

    # The placement every other is compared with; None: `none` when it has usable trials, else all pairs.
    reference: Literal["before_activation", "after_activation", "after_dropout", "none", "all"] | None = None
    # Differences inside +-margin (accuracy points) count as equivalent.
    equivalence_margin: float = Field(default=1.0, gt=0, le=100)


class SweepSpec(_Model):
    """A whole sweep, as written in spec.yaml."""

    name: str

    @field_validator("name")
    @classmethod
    def _slug(cls, name: str) -> str:
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?", name):
            raise ValueError(
                f"must be 1-64 lowercase letters, digits and dashes, not starting or ending "
                f"with a dash (got {name!r})"
            )
        return name

    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    search: SearchSpec = Field(default_factory=SearchSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)

    @model_validator(mode="after")
    def _parts_agree(self) -> SweepSpec:
        errors = []
        if self.strategy.algorithm == "grid" and isinstance(self.search.dropout, Range):
            errors.append(
                "search.dropout: grid search needs a list of rates, not a range "
                "(use strategy.algorithm random or optuna for a range)"
            )
        if self.strategy.algorithm == "grid" and self.strategy.num_samples != 1:
            errors.append(
                f"strategy.num_samples: must be 1 with grid search, which runs every "
                f"combination (got {self.strategy.num_samples})"
            )
        if self.search.adaptive is not None and (
            self.strategy.algorithm == "optuna" or self.strategy.tuning != "shared"
        ):
            errors.append(
                "search.seeds: adaptive seeds need grid or random search with shared tuning "
                "(every placement on the same blocks, so each added seed adds pairs)"
            )
        adaptive = self.search.adaptive
        if adaptive is not None and (adaptive.max < 3 or self.strategy.scheduler != "fifo"):
            errors.append(
                f"search.seeds: adaptive looks judge final accuracies of at least 3 seeds, so they need "
                f"max >= 3 and strategy.scheduler fifo, which trains every trial to the end (got max="
                f"{adaptive.max}, scheduler {self.strategy.scheduler})"
            )
        if self.strategy.algorithm == "grid" and self.strategy.tuning != "shared":
            errors.append(
                "strategy.tuning: per_placement tuning needs random or optuna search "
                "(grid already runs every configuration for every placement)"
            )
        if self.strategy.algorithm == "random" and isinstance(self.search.dropout, list):
            blocks = len(self.search.dropout) * len(self.search.optimizer)
            if self.strategy.num_samples > blocks:
                errors.append(
                    f"strategy.num_samples: only {blocks} distinct (dropout, optimizer) blocks exist "
                    f"(got {self.strategy.num_samples}); use grid search or a dropout range"
                )
        reference = self.analysis.reference
        if reference not in (None, "all") and reference not in self.search.placement:
            errors.append(
                f"analysis.reference: must be one of the searched placements "
                f"({', '.join(self.search.placement)}) or all (got {reference!r})"
            )
        classes = self.dataset.known_classes
        if self.training.loss == "binary_crossentropy" and classes not in (None, 2):
            errors.append(
                f"training.loss: binary_crossentropy needs 2 classes "
                f"(dataset {self.dataset.source} has {classes})"
            )
        if self.model.kind == "cnn" and self.dataset.source not in ("digits", "npz"):
            errors.append(
                f"model.kind: cnn needs image-shaped data, digits or npz "
                f"(got dataset.source {self.dataset.source})"
            )
        rows = self.dataset.known_rows
        if rows is not None:
            what = f"dataset {self.dataset.source}"
            errors += row_problems(rows, self.dataset, self.training.batch_size, what, classes)
        if errors:
            raise ValueError("\n".join(errors))
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def trial_count(self) -> int:
        """How many trials the sweep runs."""
        if self.strategy.tuning == "per_placement":  # one seed per tuning trial, then the re-runs
            return self.configuration_count + len(self.search.placement) * self.search.seeds
        if self.search.adaptive is not None:  # at most: max seeds everywhere
            return self.configuration_count * self.search.adaptive.max
        return self.configuration_count * self.search.seeds

    @property
    def configuration_count(self) -> int:
        """Distinct (placement, dropout, optimizer) configurations, before seeds."""
        if self.strategy.algorithm != "grid":  # blocked: every drawn block runs every placement
            return self.strategy.num_samples * len(self.search.placement)
        assert isinstance(self.search.dropout, list)
        return len(self.search.placement) * len(self.search.dropout) * len(self.search.optimizer)

    def describe_count(self) -> str:
        """How the trial count is made up, in words."""
        seeds: int | str = self.search.seeds
        if self.search.adaptive is not None:
            seeds = f"{self.search.seeds}-{self.search.adaptive.max} adaptive"
        if self.strategy.algorithm == "grid":
            assert isinstance(self.search.dropout, list)
            return (
                f"{len(self.search.placement)} placements x {len(self.search.dropout)} dropout "
                f"x {len(self.search.optimizer)} optimizers x {seeds} seeds"
            )
        if self.strategy.tuning == "per_placement":
            return (
                f"{len(self.search.placement)} placements x ({self.strategy.num_samples} "
                f"{self.strategy.algorithm} tuning trials + best re-run on {seeds} fresh seeds)"
            )
        return (
            f"{self.strategy.num_samples} {self.strategy.algorithm} blocks of (dropout, optimizer) "
            f"x {len(self.search.placement)} placements x {seeds} seeds"
        )

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude={"trial_count"})
        return yaml.safe_dump(data, sort_keys=False)


# --- loading -----------------------------------------------------------------------------

_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")
_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}


_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_ERRORS = 100  # a list of a million bad values is one mistake, not a million lines


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _union_branch(annotation: Any, tag: str) -> Any:
    """The member of a union that pydantic names `tag` (`list[float]`, `Range`, `int`)."""
    for arg in typing.get_args(annotation):
        if _is_model(arg) and arg.__name__ in tag:
            return arg
        if typing.get_origin(arg) is list and tag.startswith("list["):
            return arg
    return None


def _walk(loc: Sequence[Any], model: type[BaseModel] = SweepSpec) -> tuple[str, Any]:
    """A pydantic error location as the reader writes it, and the annotation it ends at.

    Walking the models tells a field or key apart from the name pydantic gives a union's
    branch (`training.steps_per_execution.int`), which is noise for the reader.
    """
    out = ""
    current: Any = model
    for part in loc:
        branches = [a for a in typing.get_args(current) if a is not type(None)]
        if typing.get_origin(current) in (typing.Union, types.UnionType) and len(branches) == 1:
            current = branches[0]  # `X | None`: pydantic names no branch, the part is X's
        if _is_model(current):
            field = current.model_fields.get(part) if isinstance(part, str) else None
            if isinstance(part, str) and _FIELD_NAME.fullmatch(part):
                out += f".{part}" if out else part
            else:  # a key no field has: quoted, so odd characters cannot pose as a path
                out += f"[{part!r}]"
            current = field.annotation if field else None
        elif isinstance(part, int):
            out += f"[{part}]"
            args = typing.get_args(current)
            current = args[0] if typing.get_origin(current) is list and args else None
        elif typing.get_origin(current) in (typing.Union, types.UnionType):
            current = _union_branch(current, str(part))
        else:
            out += f".{part}" if out else str(part)
            current = None
    return out, current


def _join(prefix: str, rest: str) -> str:
    if not prefix:
        return rest
    if rest.startswith("["):
        return prefix + rest
    return f"{prefix}.{rest}"


def _allowed_fields(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The field names allowed at the parent of `loc`, walking the spec models."""
    _, parent = _walk(loc[:-1], model)
    return list(parent.model_fields) if _is_model(parent) else []


def format_errors(error: ValidationError, model: type[BaseModel] = SweepSpec) -> list[str]:
    """One line per problem: `where: what is wrong (got what)`."""
    lines: list[str] = []
    for err in error.errors(include_url=False):
        loc, _ = _walk(err["loc"], model)
        kind = err["type"]
        given = err.get("input")
        if kind == "extra_forbidden":
            allowed = _allowed_fields(model, err["loc"])
            hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
            lines.append(f"{loc}: unknown field{hint}")
            continue
        if kind == "missing":
            lines.append(f"{loc}: required field is missing")
            continue
        bound = _BOUNDS.get(kind)
        if bound:
            symbol, key = bound
            limit = err["ctx"][key]
            shown = f"{limit:g}" if isinstance(limit, float) else limit
            lines.append(f"{loc}: must be {symbol} {shown} (got {given!r})")
            continue
        if kind == "literal_error":
            lines.append(f"{loc}: must be one of {err['ctx']['expected']} (got {given!r})")
            continue
        msg = err["msg"]
        for prefix in _PYDANTIC_PREFIXES:
            msg = msg.removeprefix(prefix)
        if kind in ("value_error", "assertion_error"):
            # Our validators may report several lines, each with its own sub-location.
            for line in msg.split("\n"):
                sub, sep, text = line.partition(": ")
                if sep and (sub.startswith("[") or re.fullmatch(r"[a-z_][a-z0-9_.\[\]]*", sub)):
                    lines.append(f"{_join(loc, sub)}: {text}")
                else:
                    lines.append(f"{loc}: {line}" if loc else line)
            continue
        msg = msg[0].lower() + msg[1:] if msg else msg
        if given is not None and not isinstance(given, (dict, list)):
            msg += f" (got {given!r})"
        lines.append(f"{loc}: {msg}" if loc else msg)
    # A union (list or range) reports a failure for each branch; keep each line once.
    lines = list(dict.fromkeys(lines))
    if len(lines) > MAX_ERRORS:
        lines = [*lines[:MAX_ERRORS], f"... and {len(lines) - MAX_ERRORS} more errors"]
    return lines


def parse_spec(data: Any, source: str | None = None) -> SweepSpec:
    """Validate a mapping (from YAML or JSON) into a SweepSpec, or raise SpecError."""
    if not isinstance(data, Mapping):
        kind = "empty" if data is None else type(data).__name__
        raise SpecError([f"the top level must be a mapping of fields (got {kind})"], source)
    try:
        return SweepSpec.model_validate(dict(data))
    except ValidationError as err:
        raise SpecError(format_errors(err), source) from None


MAX_SPEC_BYTES = 1024 * 1024  # a spec is a page of settings; anything near this is not one
MAX_SPEC_DEPTH = 20  # the spec's own nesting is 4 levels deep
MAX_SPEC_NODES = 10_000  # a spec has a few hundred values; PyYAML (pure Python) reads slowly
_INT_DIGITS = 4300  # Python's int() refuses longer (sys.get_int_max_str_digits)


class _SpecLoader(yaml.SafeLoader):
    """YAML for specs: plain data only, bounded in time and memory.

    Refused, each with its line and column: aliases (`*name`; a few lines of them expand
    exponentially, "billion laughs") and merge keys (`<<`), nesting deeper than MAX_SPEC_DEPTH,
    more than MAX_SPEC_NODES values, keys that are not text or appear twice (YAML keeps the last
    silently), scalars that YAML would turn into dates, timestamps or bytes (`name: 2024-06-01`
    is a date to YAML, not text), sets and ordered maps, and integers too long for Python.
    Tags that construct Python objects are refused by SafeLoader already.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a spec: write the value out", event.start_mark
            )
        self._depth = getattr(self, "_depth", 0) + 1
        self._nodes = getattr(self, "_nodes", 0) + 1
        try:
            if self._depth > MAX_SPEC_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_SPEC_DEPTH} levels", self.peek_event().start_mark
                )
            if self._nodes > MAX_SPEC_NODES:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"more than {MAX_SPEC_NODES:,} values: not a spec",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        first_line: dict[str, int] = {}
        for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():
            if key_node.tag == "tag:yaml.org,2002:merge":
                self._fail(key_node, "merge keys (<<) are not allowed in a spec: write the fields out")
            key = self.construct_object(key_node)
            if not isinstance(key, str):
                self._fail(key_node, f"the key {key!r} is not text; quote it if you mean text")
            if key in first_line:
                self._fail(key_node, f"the key {key!r} appears twice (first on line {first_line[key]})")
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)

    def _fail(self, node: Any, problem: str) -> Any:
        raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)

    def _refuse(self, node: Any, what: str) -> Any:
        return self._fail(node, f"{what} {node.value!r} is not a spec value; quote it if you mean text")

    def construct_yaml_timestamp(self, node: Any) -> Any:
        return self._refuse(node, "the date or timestamp")

    def construct_yaml_binary(self, node: Any) -> Any:
        return self._refuse(node, "the binary value")

    def construct_yaml_int(self, node: Any) -> Any:
        if len(node.value) > _INT_DIGITS:
            return self._fail(node, f"an integer of {len(node.value)} characters is not a spec value")
        return super().construct_yaml_int(node)

    def construct_collection(self, node: Any) -> Any:
        return self._fail(node, f"a YAML !!{node.tag.rsplit(':', 1)[-1]} is not a spec value")


_SpecLoader.add_constructor("tag:yaml.org,2002:timestamp", _SpecLoader.construct_yaml_timestamp)
_SpecLoader.add_constructor("tag:yaml.org,2002:binary", _SpecLoader.construct_yaml_binary)
_SpecLoader.add_constructor("tag:yaml.org,2002:int", _SpecLoader.construct_yaml_int)
for _tag in ("set", "omap", "pairs"):  # Python sets and tuples: not what a spec's fields hold
    _SpecLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _SpecLoader.construct_collection)


def _line_column(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"line {line}, column {offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"


def _json_too_deep(text: str) -> int | None:
    """Where JSON text nests deeper than MAX_SPEC_DEPTH, without parsing it (json.loads
    recurses: deep text overflows the stack); None if it does not."""
    depth = 0
    in_string = escaped = False
    for offset, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_SPEC_DEPTH:
                return offset
        elif char in "]}":
            depth -= 1
    return None


def _yaml_problem(err: yaml.YAMLError, text: str) -> str:
    """`line L, column C: invalid YAML: problem` for any error PyYAML raises."""
    if isinstance(err, yaml.reader.ReaderError):  # a character YAML does not allow: no mark, an offset
        where = _line_column(text, err.position) + ": " if isinstance(err.position, int) else ""
        code = err.character if isinstance(err.character, int) else ord(str(err.character)[:1] or "?")
        return f"{where}invalid YAML: the character #x{code:04x} is not allowed"
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{where}invalid YAML: {problem}"


def _unpaired_surrogate(data: Any, where: str = "") -> str | None:
    """Where `data` holds text that is not unicode: a lone UTF-16 surrogate, which the escape
    `\\ud800` makes in JSON and in YAML's double quotes (and which nothing can encode)."""
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            return where or "the document"
    elif isinstance(data, Mapping):
        for key, value in data.items():
            path = _join(where, key if isinstance(key, str) and _FIELD_NAME.fullmatch(key) else f"[{key!r}]")
            found = _unpaired_surrogate(key, path) or _unpaired_surrogate(value, path)
            if found:
                return found
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found = _unpaired_surrogate(value, f"{where}[{i}]")
            if found:
                return found
    return None


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (json.loads keeps the last, silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def parse_spec_text(text: str, suffix: str = ".yaml", source: str | None = None) -> dict[str, Any]:
    """YAML or JSON text into a mapping, or SpecError naming the line and the problem."""
    if len(text.encode("utf-8", errors="replace")) > MAX_SPEC_BYTES:
        raise SpecError([f"larger than {MAX_SPEC_BYTES // 1024} KiB: not a spec"], source)
    if suffix == ".json" and (offset := _json_too_deep(text)) is not None:
        raise SpecError([f"{_line_column(text, offset)}: nested deeper than {MAX_SPEC_DEPTH} levels"], source)
    try:
        # _SpecLoader is a SafeLoader, restricted further
        if suffix == ".json":
            data = json.loads(text, object_pairs_hook=_json_object)
        else:
            data = yaml.load(text, Loader=_SpecLoader)
    except _DuplicateKey as err:
        raise SpecError([f"invalid JSON: the key {err.key!r} appears twice in one object"], source) from None
    except json.JSONDecodeError as err:
        raise SpecError([f"line {err.lineno}, column {err.colno}: invalid JSON: {err.msg}"], source) from None
    except yaml.YAMLError as err:
        raise SpecError([_yaml_problem(err, text)], source) from None
    except ValueError as err:  # JSON: an integer of more than 4300 digits
        digits = re.search(rf"\d{{{_INT_DIGITS + 1},}}", text)
        where = f"{_line_column(text, digits.start())}: " if digits else ""
        raise SpecError([f"{where}cannot be read as a spec: {str(err)[:200]}"], source) from None
    if not isinstance(data, Mapping):
        kind = "empty" if data is None else type(data).__name__
        raise SpecError([f"the top level must be a mapping of fields (got {kind})"], source)
    surrogate = _unpaired_surrogate(data)
    if surrogate:
        raise SpecError([f"{surrogate}: not unicode text (an unpaired surrogate such as \\ud800)"], source)
    return dict(data)


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """Read YAML or JSON into a mapping, or raise SpecError naming the file and the problem."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_SPEC_BYTES:
            raise SpecError([f"larger than {MAX_SPEC_BYTES // 1024} KiB: not a spec"], str(path))
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(["file not found"], str(path)) from None
    except IsADirectoryError:
        raise SpecError(["is a directory, not a spec file"], str(path)) from None
    except UnicodeDecodeError as err:
        raise SpecError([f"byte {err.start}: not UTF-8 text"], str(path)) from None
    except OSError as err:
        raise SpecError([f"cannot be read: {err}"], str(path)) from None
    return parse_spec_text(text, path.suffix, str(path))


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply `key.path=value` overrides (value parsed as YAML) to a spec mapping."""
    errors = []
    out = json.loads(json.dumps(data))  # a deep copy of plain data
    for item in overrides:
        key, sep, raw = item.partition("=")
        shown = item if item.isprintable() else repr(item)  # a newline would split the error line
        if not sep or not key.strip():
            errors.append(f"--set {shown}: expected key.path=value")
            continue
        try:  # the spec file's rules: `--set name=2024-06-01` is text, not a date
            value = yaml.load(raw, Loader=_SpecLoader)
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                errors.append(f"--set {shown}: {part!r} is not a mapping")
                break
            node = child
        else:
            node[parts[-1]] = value
    if errors:
        raise SpecError(errors)
    return out


def resolve_data_path(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """A relative `dataset.path` is relative to the spec file's folder, not to the working directory."""
    dataset = data.get("dataset")
    if isinstance(dataset, dict) and isinstance(dataset.get("path"), str) and dataset["path"]:
        path = Path(dataset["path"]).expanduser()
        if not path.is_absolute():
            data = {**data, "dataset": {**dataset, "path": str(base / path)}}
    return data


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> SweepSpec:
    """Load, override and validate a spec file.

    A relative `dataset.path` in the file is taken from the file's folder; one given by an
    override (`--set dataset.path=...`) from the working directory, as a shell user expects.
    """
    data = resolve_data_path(read_spec_file(path), Path(path).resolve().parent)
    data = apply_overrides(data, overrides)
    return parse_spec(data, str(path))
