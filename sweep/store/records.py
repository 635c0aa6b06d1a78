"""A sweep's parent run and a trial's child run, read once into typed records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sweep.store.layout import (
    ATTEMPTS,
    ERROR,
    FAILURE,
    NODE_TAGS,
    PHASE,
    SWEEP_ID,
    SWEEP_STATE,
    TRIAL_ID,
    TRIALS_TOTAL,
)
from sweep.trial import TrialConfig


@dataclass(frozen=True)
class SweepRecord:
    """A sweep's parent run as MLflow holds it."""

    sweep_id: str
    parent_run_id: str
    experiment_id: str
    state: str  # SWEEP_STATE: running | finished | interrupted | failed
    status: str  # the run's RunStatus
    trials_total: int
    spec_yaml: str | None

    @classmethod
    def from_run(cls, run: Any, spec_yaml: str | None = None) -> SweepRecord:
        tags = run.data.tags
        return cls(
            sweep_id=tags.get(SWEEP_ID, ""),
            parent_run_id=run.info.run_id,
            experiment_id=run.info.experiment_id,
            state=tags.get(SWEEP_STATE, "unknown"),
            status=run.info.status,
            trials_total=int(tags.get(TRIALS_TOTAL, "0") or 0),
            spec_yaml=spec_yaml,
        )


@dataclass(frozen=True)
class TrialRecord:
    """A trial's child run as MLflow holds it."""

    run_id: str
    name: str
    status: str  # the run's RunStatus
    config: TrialConfig | None  # None: its driver died before it logged the params
    optimizer_name: str | None  # the Keras optimizer (`config.optimizer` is the spec's label)
    params: Mapping[str, str] = field(repr=False)
    metrics: Mapping[str, float] = field(repr=False)
    tags: Mapping[str, str] = field(repr=False)
    end_time: int | None = None  # ms since the epoch, once it ended

    @classmethod
    def from_run(cls, run: Any) -> TrialRecord:
        params, tags = run.data.params, run.data.tags
        try:
            config: TrialConfig | None = TrialConfig.from_params(params, tags.get(PHASE, ""))
        except ValueError:
            config = None
        return cls(
            run_id=run.info.run_id,
            name=str(run.info.run_name),
            status=run.info.status,
            config=config,
            optimizer_name=params.get("optimizer"),
            params=params,
            metrics=run.data.metrics,
            tags=tags,
            end_time=run.info.end_time,
        )

    @property
    def trial_id(self) -> str | None:
        return self.tags.get(TRIAL_ID)

    @property
    def attempts(self) -> int:
        return int(self.tags.get(ATTEMPTS, "1") or 1)

    @property
    def failure(self) -> str | None:
        return self.tags.get(FAILURE)

    @property
    def error(self) -> str | None:
        return self.tags.get(ERROR)

    @property
    def phase(self) -> str:
        return self.tags.get(PHASE, "")

    @property
    def node_ip(self) -> str | None:
        return self.tags.get(NODE_TAGS["node_ip"])

    @property
    def device(self) -> str | None:
        """What the trial trained on: its GPUs' names, or cpu (None: recorded before devices were)."""
        return self.tags.get(NODE_TAGS["device"])
