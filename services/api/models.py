"""What the API answers, as pydantic models (the OpenAPI document's schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

# QUEUED: waiting for one of the cluster's sweep slots (docs/api.md#queue).
Status = Literal["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
TERMINAL: frozenset[str] = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


class ErrorItem(BaseModel):
    loc: str = Field(description="Where, as in the spec: `search.dropout[2]`; '' for the whole body.")
    msg: str


class Problem(BaseModel):
    """An error (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[ErrorItem] | None = None


class Links(BaseModel):
    self: str
    trials: str
    report: str
    logs: str
    events: str
    cancel: str
    mlflow: str | None = Field(description="The parent run in MLflow's UI (runs view); null until it exists.")


class Trials(BaseModel):
    finished: int
    failed: int
    running: int
    total: int


class Sweep(BaseModel):
    id: str
    name: str | None
    status: Status
    reason: str | None = Field(description="Why a sweep FAILED (or what Ray says about its job).")
    queue_position: int | None = Field(
        default=None, description="QUEUED: its place in the queue, 1 for the next to start."
    )
    created_at: datetime | None
    ended_at: datetime | None
    ray_job_id: str | None = Field(description="The Ray job's submission id (`sweep-<id>`).")
    parent_run_id: str | None
    experiment_id: str | None
    mlflow_url: str | None
    metric: str | None = None
    best: float | None = Field(default=None, description="Best final value of the metric so far.")
    trials: Trials | None = Field(default=None, description="Counts (GET /v1/sweeps/{id} only).")
    links: Links


class SweepPage(BaseModel):
    items: list[Sweep]
    next: str | None = Field(description="The next page, or null on the last one.")


class TrialTable(BaseModel):
    sweep_id: str
    trials: list[dict[str, Any]]


class SweepCounts(BaseModel):
    running: int = Field(description="Sweeps whose driver runs now.")
    queued: int = Field(description="Sweeps waiting for a slot.")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str]
    sweeps: SweepCounts | None = Field(default=None, description="/readyz: null when Ray cannot be read.")


class Plugin(BaseModel):
    name: str = Field(description="What a spec's `model.builder` or `dataset.loader` names.")
    target: str = Field(description="The installed function, as 'module:function'.")


class Plugins(BaseModel):
    models: list[Plugin] = Field(description="Builders registered in entry-point group sweep.models.")
    datasets: list[Plugin] = Field(description="Loaders registered in entry-point group sweep.datasets.")
