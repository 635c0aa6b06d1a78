"""The smaller sections of a spec: training, strategy, resources, tracking, analysis."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from sweep.spec.base import SpecModel


class TrainingSpec(SpecModel):
    epochs: int = Field(default=20, ge=1, le=10_000)
    batch_size: int = Field(default=32, ge=1, le=65_536)
    loss: Literal["categorical_crossentropy", "binary_crossentropy"] = "categorical_crossentropy"
    target_accuracy: float | None = Field(default=None, gt=0, le=1)
    steps_per_execution: int | Literal["epoch"] = "epoch"
    # Keras' mixed_float16 policy (float16 compute, float32 weights), the model's output in float32.
    mixed_precision: bool = False

    @field_validator("steps_per_execution")
    @classmethod
    def _positive_steps(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"must be >= 1 or 'epoch' (got {value})")
        return value

    # Epochs between checkpoints of a trial's state (0: none): a lost worker, node or driver
    # costs at most this many epochs. The default's cost is measured in docs/performance.md.
    checkpoint_every: int = Field(default=5, ge=0, le=10_000)


class StrategySpec(SpecModel):
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


class ResourcesSpec(SpecModel):
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

    # The newest checkpoints kept per trial while it runs (Tune's CheckpointConfig.num_to_keep).
    keep_checkpoints: int = Field(default=1, ge=1, le=1000)
    # Keep a trial's checkpoints once it ended for good (by default they are removed then).
    keep_checkpoints_after: bool = False


class TrackingSpec(SpecModel):
    experiment: str = Field(default="bn-placement", min_length=1, max_length=200)
    uri: str | None = None


class AnalysisSpec(SpecModel):
    """How the report decides, declared before the data is seen."""

    # The placement every other is compared with; None: `none` when it has usable trials, else all pairs.
    reference: Literal["before_activation", "after_activation", "after_dropout", "none", "all"] | None = None
    # Differences inside +-margin (accuracy points) count as equivalent.
    equivalence_margin: float = Field(default=1.0, gt=0, le=100)
