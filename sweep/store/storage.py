"""SweepStore: every read and write of a sweep's runs goes through here, in one layout.

Modelled on Optuna's storages (`optuna/storages/_base.py`): one object owns the queries and the
writes, and hands out typed records. The layout itself is `sweep.store.layout`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow.entities import Metric, Param, RunTag

from sweep.store.layout import (
    ATTEMPTS,
    ERROR,
    PARENT_RUN,
    PHASE,
    SPEC_ARTIFACT,
    SWEEP_ID,
    SWEEP_NAME,
    SWEEP_STATE,
    TRIAL_ID,
    TRIALS_TOTAL,
    trials_count_tag,
)
from sweep.store.records import SweepRecord, TrialRecord
from sweep.trial import RunStatus, TrialConfig

if TYPE_CHECKING:
    from sweep.spec import SweepSpec

_SWEEP_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,120}")
_MAX_TRIALS = 50_000  # child runs read in one query
_BATCH = 900  # MLflow accepts at most 1000 metrics per log_batch
# A sweep's end state -> its parent run's status; any other state ends FAILED.
_END_STATUS = {
    "finished": RunStatus.FINISHED,
    "interrupted": RunStatus.KILLED,
    "cancelled": RunStatus.KILLED,  # cancelled while queued: it never ran
}


def experiment_id(client: Any, name: str, runs_dir: Path | None) -> str:
    """The experiment's id, creating it (artifacts beside a local store) if needed."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    uri = client.tracking_uri
    if uri.startswith("sqlite:") and runs_dir is not None:
        location = (runs_dir / "mlartifacts").resolve().as_uri()
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except Exception:  # created meanwhile by another driver
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


class SweepNotFound(LookupError):
    """No parent run carries this sweep id."""


def _flatten(prefix: str, data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            out.update(_flatten(name, value))
        else:
            out[name] = value
    return out


def spec_params(spec: SweepSpec) -> dict[str, str]:
    """The parent run's params: the spec flattened, its search space in one param a setting."""
    params = _flatten("", spec.model_dump(mode="json", exclude={"search", "trial_count"}))
    dropout = spec.search.dropout
    params.update(
        {
            "search.placement": ",".join(spec.search.placement),
            "search.dropout": str(dropout if isinstance(dropout, list) else dropout.model_dump()),
            "search.optimizer": ",".join(spec.search.optimizers),
            "search.seeds": spec.search.seeds,
            "trial_count": spec.trial_count,
        }
    )
    return {k: str(v)[:6000] for k, v in params.items()}


class SweepStore:
    """A tracking store's sweeps: parent runs, their trials' child runs, reads and writes.

    `client` is an `MlflowClient`, or anything with its methods (`sweep.retrying.RetryingClient`).
    """

    def __init__(self, client: Any) -> None:
        self.client = client

    @property
    def tracking_uri(self) -> str:
        return str(self.client.tracking_uri)

    # --- parent runs --------------------------------------------------------------------------
    def parent_runs(
        self,
        sweep_id: str | None = None,
        experiment_ids: list[str] | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[Any]:
        """Parent runs (of one sweep id, or of every sweep), in every experiment unless given.

        Child runs carry the sweep id too; only parents carry SWEEP_STATE, so a sweep with any
        number of trials finds its parent in one small query.
        """
        if experiment_ids is None:
            experiment_ids = [e.experiment_id for e in self.client.search_experiments()]
        if not experiment_ids:
            return []
        query = f"tags.`{SWEEP_STATE}` != ''"
        if sweep_id is not None:
            query += f" and tags.`{SWEEP_ID}` = '{sweep_id}'"
        runs = self.client.search_runs(
            experiment_ids,
            query,
            max_results=limit,
            order_by=[f"attributes.start_time {'DESC' if newest_first else 'ASC'}"],
        )
        return [r for r in runs if PARENT_RUN not in r.data.tags]

    def find_sweep(self, sweep_id: str, with_spec: bool = True) -> SweepRecord:
        """The parent run of `sweep_id` (the oldest, should two drivers have made one)."""
        if not _SWEEP_ID.fullmatch(sweep_id):
            raise SweepNotFound(f"{sweep_id!r} is not a sweep id (lowercase letters, digits and dashes)")
        parents = self.parent_runs(sweep_id)
        if not parents:
            raise SweepNotFound(f"no sweep with id {sweep_id!r} in {self.tracking_uri}")
        run = parents[0]
        return SweepRecord.from_run(run, self.spec_yaml(run.info.run_id) if with_spec else None)

    def spec_yaml(self, parent_run_id: str) -> str | None:
        """The spec the sweep ran, as its parent run keeps it; None when it cannot be read."""
        try:
            path = self.client.download_artifacts(parent_run_id, SPEC_ARTIFACT)
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except Exception:  # an artifact store that is gone should not hide the runs
            return None

    def create_sweep(
        self, experiment_id: str, sweep_id: str, spec: SweepSpec, tags: Mapping[str, str]
    ) -> str:
        """A new parent run, RUNNING; returns its id. `record_spec` completes it."""
        run = self.client.create_run(
            experiment_id,
            run_name=sweep_id,
            tags={SWEEP_ID: sweep_id, SWEEP_NAME: spec.name, SWEEP_STATE: "running", **tags},
        )
        return str(run.info.run_id)

    def queue_sweep(self, experiment_id: str, sweep_id: str, spec: SweepSpec, tags: Mapping[str, str]) -> str:
        """A new parent run for a sweep whose job waits for a slot: SCHEDULED, state `queued`."""
        run_id = self.create_sweep(experiment_id, sweep_id, spec, {**tags, SWEEP_STATE: "queued"})
        self.client.update_run(run_id, status=RunStatus.SCHEDULED)
        return run_id

    def record_spec(self, parent_run_id: str, spec: SweepSpec) -> None:
        """The spec on its parent run: as params, its trial count, and spec.yaml itself."""
        params = spec_params(spec)
        self.client.log_batch(
            parent_run_id,
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(TRIALS_TOTAL, str(spec.trial_count))],
        )
        self.client.log_text(parent_run_id, spec.to_yaml(), SPEC_ARTIFACT)

    def reopen_sweep(self, parent_run_id: str, tags: Mapping[str, str]) -> None:
        """A resumed sweep's parent run: RUNNING again, its state `running`."""
        self.client.update_run(parent_run_id, status=RunStatus.RUNNING)
        tags = {SWEEP_STATE: "running", **tags}
        self.client.log_batch(parent_run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def end_sweep(
        self,
        parent_run_id: str,
        state: str,
        counts: Mapping[str, int] | None = None,
        error: str | None = None,
    ) -> None:
        """End the parent run: FINISHED when the sweep completed, KILLED or FAILED if not."""
        tags = {SWEEP_STATE: state, **{trials_count_tag(k): str(v) for k, v in (counts or {}).items()}}
        if error is not None:
            tags[ERROR] = error
        self.client.log_batch(parent_run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        self.client.set_terminated(parent_run_id, _END_STATUS.get(state, RunStatus.FAILED))

    def log_on_sweep(self, parent_run_id: str, metrics: Mapping[str, float], tags: Mapping[str, str]) -> None:
        """Metrics (at step 0) and tags on the parent run: an adaptive sweep's looks, the report's."""
        now = int(time.time() * 1000)
        self.log_on_run(parent_run_id, [Metric(k, float(v), now, 0) for k, v in metrics.items()], tags)

    def log_on_run(self, run_id: str, metrics: list[Any], tags: Mapping[str, str]) -> None:
        """Metrics and tags (each cut to MLflow's 5,000 characters) on one run, in as few writes
        as MLflow's limit of 1,000 metrics a batch allows; the tags go with the first."""
        tag_list = [RunTag(k, v[:5000]) for k, v in tags.items()]
        for i in range(0, max(len(metrics), 1), _BATCH):
            self.client.log_batch(run_id, metrics=metrics[i : i + _BATCH], tags=tag_list if i == 0 else [])

    # --- child runs -----------------------------------------------------------------------------
    def trial_runs(self, record: SweepRecord, status: str | None = None) -> list[Any]:
        """The sweep's trial runs (of every attempt still kept), of one status if given."""
        query = f"tags.`{PARENT_RUN}` = '{record.parent_run_id}'"
        if status is not None:
            query += f" and attributes.status = '{status}'"
        return list(self.client.search_runs([record.experiment_id], query, max_results=_MAX_TRIALS))

    def trials(self, record: SweepRecord, status: str | None = None) -> list[TrialRecord]:
        """`trial_runs` as records."""
        return [TrialRecord.from_run(run) for run in self.trial_runs(record, status)]

    def create_trial(
        self,
        record: SweepRecord,
        trial_id: str,
        config: TrialConfig,
        spec: SweepSpec,
        attempts: int,
        tags: Mapping[str, str],
    ) -> str:
        """A new child run for a trial, its configuration as params; returns its id."""
        layout = {PARENT_RUN: record.parent_run_id, SWEEP_ID: record.sweep_id, TRIAL_ID: trial_id}
        layout[ATTEMPTS] = str(attempts)
        if config.phase:
            layout[PHASE] = str(config.phase)
        run = self.client.create_run(record.experiment_id, run_name=config.run_name, tags={**layout, **tags})
        run_id = str(run.info.run_id)
        params = config.to_params(spec)
        self.client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
        return run_id

    def end_run(self, run_id: str, status: str, error: str) -> None:
        """End a run that did not end itself (its driver stopped, its job is gone), saying why."""
        self.client.set_tag(run_id, ERROR, error)
        self.client.set_terminated(run_id, status)

    def metric_history(self, run_id: str, metrics: tuple[str, ...]) -> dict[int, dict[str, float]]:
        """A run's per-epoch values of `metrics`: epoch -> {metric: value}."""
        per_epoch: dict[int, dict[str, float]] = {}
        for m in metrics:
            for point in self.client.get_metric_history(run_id, m):
                per_epoch.setdefault(point.step, {})[m] = point.value
        return per_epoch
