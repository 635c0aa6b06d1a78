"""The whole spec, as written in spec.yaml: its sections, and the rules between them."""

from __future__ import annotations

import re

import yaml
from pydantic import Field, computed_field, field_validator, model_validator

from sweep.spec.base import SpecModel
from sweep.spec.dataset import DatasetSpec, row_problems
from sweep.spec.model import ModelSpec
from sweep.spec.search import Range, SearchSpec
from sweep.spec.sections import (
    AnalysisSpec,
    ResourcesSpec,
    StrategySpec,
    TrackingSpec,
    TrainingSpec,
)

# Sources whose rows can be images (a python loader's, checked when its data is read).
_IMAGE_SOURCES = ("digits", "npz", "image_folder", "keras", "python")


class SweepSpec(SpecModel):
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
        errors = [*self._search_problems(), *self._data_problems()]
        if errors:
            raise ValueError("\n".join(errors))
        return self

    def _search_problems(self) -> list[str]:
        """Where the search, the strategy and the analysis disagree."""
        errors = []
        if self.strategy.algorithm == "grid" and isinstance(self.search.dropout, Range):
            errors.append(
                "search.dropout: grid search needs a list of rates, not a range "
                "(use strategy.algorithm random or optuna for a range)"
            )
        if self.strategy.algorithm == "grid":
            errors += [
                f"search.optimizer[{i}].learning_rate: grid search needs a fixed rate, not a range "
                "(use strategy.algorithm random or optuna for a range)"
                for i, o in enumerate(self.search.optimizer)
                if o.rate_range is not None
            ]
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
        fixed_rates = all(o.rate_range is None for o in self.search.optimizer)
        if self.strategy.algorithm == "random" and isinstance(self.search.dropout, list) and fixed_rates:
            blocks = len(self.search.dropout) * len(self.search.optimizer)
            if self.strategy.num_samples > blocks:
                errors.append(
                    f"strategy.num_samples: only {blocks} distinct (dropout, optimizer) blocks exist "
                    f"(got {self.strategy.num_samples}); use grid search, a dropout range or a "
                    "learning-rate range"
                )
        reference = self.analysis.reference
        if reference not in (None, "all") and reference not in self.search.placement:
            errors.append(
                f"analysis.reference: must be one of the searched placements "
                f"({', '.join(self.search.placement)}) or all (got {reference!r})"
            )
        return errors

    def _data_problems(self) -> list[str]:
        """Where the model, the training and the data set disagree."""
        errors = []
        classes = self.dataset.known_classes
        if self.training.loss == "binary_crossentropy" and classes not in (None, 2):
            errors.append(
                f"training.loss: binary_crossentropy needs 2 classes "
                f"(dataset {self.dataset.source} has {classes})"
            )
        if self.model.image_rows and self.dataset.source not in _IMAGE_SOURCES:
            field = "model.kind: cnn" if self.model.kind == "cnn" else "model.image_input: true"
            errors.append(
                f"{field} needs image-shaped data, {', '.join(_IMAGE_SOURCES[:-1])} or "
                f"{_IMAGE_SOURCES[-1]} (got dataset.source {self.dataset.source})"
            )
        rows = self.dataset.known_rows
        if rows is not None:
            what = f"dataset {self.dataset.source}"
            errors += row_problems(rows, self.dataset, self.training.batch_size, what, classes)
        return errors

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
            f"{self.strategy.num_samples} {self.strategy.algorithm} blocks of {self._block_axes} "
            f"x {len(self.search.placement)} placements x {seeds} seeds"
        )

    @property
    def _block_axes(self) -> str:
        drawn = any(o.rate_range is not None for o in self.search.optimizer)
        return "(dropout, optimizer, learning rate)" if drawn else "(dropout, optimizer)"

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude={"trial_count"})
        return yaml.safe_dump(data, sort_keys=False)
