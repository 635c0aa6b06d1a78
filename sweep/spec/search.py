"""The `search` section: the axes a sweep searches (placement, dropout, optimizer, seeds)."""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from sweep.spec.base import SpecModel

if TYPE_CHECKING:
    import numpy as np

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


class Range(SpecModel):
    """A continuous range for random and optuna search."""

    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"low must be < high (got low={self.low}, high={self.high})")
        return self


class RateRange(SpecModel):
    """A learning-rate range for random and optuna search: each block draws one rate from it."""

    low: float = Field(le=1e6)
    high: float = Field(le=1e6)
    log: bool = True  # rates span decades: drawn uniformly in log(rate) unless `log: false`

    @model_validator(mode="after")
    def _ordered(self) -> RateRange:
        if not self.low > 0:
            rule = "a log range needs low > 0" if self.log else "a learning rate must be > 0"
            raise ValueError(f"{rule} (got low={self.low})")
        if not self.low < self.high:
            raise ValueError(f"low must be < high (got low={self.low}, high={self.high})")
        return self

    def draw(self, rng: np.random.Generator) -> float:
        """One rate, rounded to 4 significant digits so it reads back equal from a run's params."""
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return rounded_rate(value)


def rounded_rate(rate: float) -> float:
    """A drawn rate as recorded: 4 significant digits (so a block's key survives MLflow's params)."""
    return float(f"{float(rate):.4g}")


class OptimizerSpec(SpecModel):
    """One optimizer with its settings; `label` tells apart two of the same name."""

    name: Literal["sgd", "adam", "adamw", "rmsprop", "nadam", "adagrad"]
    label: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_.-]{0,39}$")
    learning_rate: Annotated[float, Field(gt=0, le=1e6)] | RateRange | None = None
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
    def rate_range(self) -> RateRange | None:
        """The range each block draws its learning rate from; None for a fixed rate."""
        return self.learning_rate if isinstance(self.learning_rate, RateRange) else None

    @property
    def fixed_rate(self) -> float | None:
        """The learning rate every trial of this optimizer uses (Keras default if unset); None for a range."""
        if isinstance(self.learning_rate, RateRange):
            return None
        return self.learning_rate or _DEFAULT_LEARNING_RATE.get(self.name, 0.001)

    def settings_at(self, learning_rate: float) -> dict[str, Any]:
        """The arguments that were set, with this learning rate (a trial's: fixed, or its block's draw)."""
        out: dict[str, Any] = {"learning_rate": learning_rate}
        for arg in OPTIMIZER_ARGS[self.name] + ("decay", "weight_decay"):
            value = getattr(self, arg)
            if value is not None and not (arg == "decay" and value == 0):
                out[arg] = value
        return out


def _rate_label(optimizer: OptimizerSpec) -> str:
    """The rate in a default label: the fixed rate, or the range's ends (never a drawn value)."""
    rates = optimizer.rate_range
    return f"{optimizer.fixed_rate:g}" if rates is None else f"{rates.low:g}-{rates.high:g}"


DropoutAxis = list[float] | Range


class AdaptiveSeeds(SpecModel):
    """Seeds added only where a comparison is undecided, up to `max` (sweep.adaptive)."""

    max: int = Field(ge=2, le=1000)
    step: int = Field(default=1, ge=1, le=100)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)  # over every look and comparison together


class SearchSpec(SpecModel):
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
                label = o.name if names[o.name] == 1 else f"{o.name}-lr{_rate_label(o)}"
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
