"""`sweep reproduce`: train one recorded trial again, in this process, and compare its metrics."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow.tracking import MlflowClient

from sweep.data import load_sweep_data
from sweep.reproducibility import (
    DATA_FINGERPRINT,
    TRIAL_HASH,
    VERSION_TAGS,
    check_same_data,
    data_fingerprint,
    library_versions,
    trial_hash,
)
from sweep.settings import apply_environment
from sweep.store.layout import (
    EPOCHS_COMPLETED,
    LAST_RESULTS,
    METRICS,
    PARENT_RUN,
    STOPPED_EARLY,
    SWEEP_ID,
    final,
)
from sweep.store.template import open_store
from sweep.sweep_dir import load_sweep_spec
from sweep.trainable import fit_trial
from sweep.trial import RunStatus, TrialConfig

if TYPE_CHECKING:
    from sweep.data import Dataset
    from sweep.spec import SweepSpec

# The recorded metric each re-trained value is held against (sweep.store.layout.trial_summary).
# recorded name -> the key of the re-run's last result: every final figure a trial's run keeps
COMPARED = {**{final(m): m for m in METRICS}, **{name: key for key, name in LAST_RESULTS.items()}}


class ReproduceError(ValueError):
    """A run that cannot be reproduced: not found, not a finished trial, no record, spec changed."""


@dataclass(frozen=True)
class MetricMatch:
    """One recorded final metric beside its value from the re-run."""

    name: str
    recorded: float
    reproduced: float

    @property
    def difference(self) -> float:
        return abs(self.reproduced - self.recorded)

    @property
    def exact(self) -> bool:
        return self.reproduced == self.recorded


@dataclass(frozen=True)
class Reproduction:
    """A trial trained again, and how its metrics compare with its run's."""

    run_id: str
    run_name: str
    sweep_id: str
    config: dict[str, Any]
    epochs: int
    data_fingerprint: str
    metrics: tuple[MetricMatch, ...]
    version_changes: dict[str, tuple[str, str]]  # library -> (recorded, now), where they differ

    @property
    def identical(self) -> bool:
        return all(m.exact for m in self.metrics)

    @property
    def largest(self) -> MetricMatch:
        return max(self.metrics, key=lambda m: m.difference)


def _trial_run(client: MlflowClient, run_id: str) -> Any:
    try:
        run = client.get_run(run_id)
    except Exception as err:  # MLflow raises its own exception for an unknown id
        raise ReproduceError(f"RUN_ID: no run {run_id!r} in {client.tracking_uri}") from err
    tags = run.data.tags
    if PARENT_RUN not in tags or SWEEP_ID not in tags:
        raise ReproduceError(
            f"RUN_ID: {run_id} is not a trial's run (a sweep's child run); "
            "`sweep results SWEEP_ID` lists them"
        )
    if run.info.status != RunStatus.FINISHED:
        raise ReproduceError(
            f"RUN_ID: {run_id} ended {run.info.status}; only a FINISHED trial has final metrics to compare"
        )
    if DATA_FINGERPRINT not in tags or TRIAL_HASH not in tags:
        raise ReproduceError(
            f"RUN_ID: {run_id} has no reproducibility record ({DATA_FINGERPRINT}, {TRIAL_HASH}): "
            "it ran before the record existed"
        )
    return run


def reproduce_trial(
    run_id: str, runs_dir: str | Path = "runs", tracking_uri: str | None = None
) -> Reproduction:
    """Train the trial of child run `run_id` again and compare its final metrics with the run's.

    The spec comes from the sweep's folder under `runs_dir`, else from its parent run in MLflow.
    Refuses (DataChanged) when the data loaded now has another fingerprint than the run's, and
    (ReproduceError) when the spec no longer gives the trial's recorded identity.
    """
    settings = apply_environment()
    uri = settings.resolve_tracking_uri(Path(runs_dir).resolve(), tracking_uri, None)
    run = _trial_run(open_store(uri), run_id)
    trial = _recorded_trial(run, run_id, runs_dir, uri)
    os.environ.update(settings.worker_env())  # Keras on TensorFlow, as on a Ray worker
    history: list[dict[str, Any]] = []
    with warnings.catch_warnings():  # workers run with PYTHONWARNINGS=ignore
        warnings.simplefilter("ignore")
        fit_trial(trial.config, trial.spec, trial.data, history.append, epochs=trial.epochs)
    last = history[-1]
    recorded = run.data.metrics
    matches = tuple(
        MetricMatch(name, float(recorded[name]), float(last[key]))
        for name, key in COMPARED.items()
        if name in recorded and key in last
    )
    now = library_versions()
    tags = run.data.tags
    changes = {
        name: (tags[tag], now[name])
        for name, tag in VERSION_TAGS.items()
        if tags.get(tag, now[name]) != now[name]
    }
    if not matches:
        raise ReproduceError(f"RUN_ID: {run_id} recorded none of {', '.join(COMPARED)}")
    return Reproduction(
        run_id=run_id,
        run_name=run.info.run_name,
        sweep_id=trial.sweep_id,
        config=trial.config,
        epochs=trial.epochs,
        data_fingerprint=trial.fingerprint,
        metrics=matches,
        version_changes=changes,
    )


@dataclass(frozen=True)
class _RecordedTrial:
    """What training a recorded trial again needs, each part checked against its run's record."""

    sweep_id: str
    spec: SweepSpec
    config: dict[str, Any]
    data: Dataset
    fingerprint: str
    epochs: int


def _recorded_trial(run: Any, run_id: str, runs_dir: str | Path, uri: str) -> _RecordedTrial:
    """The trial of `run` as its sweep's spec gives it, refused where spec or data are not the run's."""
    tags, params = run.data.tags, run.data.params
    sweep_id = tags[SWEEP_ID]
    spec = load_sweep_spec(sweep_id, runs_dir, uri)
    try:
        config = TrialConfig.from_params(params).to_tune()
    except ValueError as err:
        raise ReproduceError(f"RUN_ID: {run_id}: {err}") from None
    if config["optimizer"] not in spec.search.optimizers:
        raise ReproduceError(
            f"search.optimizer: sweep {sweep_id}'s spec has no optimizer {config['optimizer']!r}"
        )
    data = load_sweep_data(spec)  # as the sweep loaded it
    fingerprint = data_fingerprint(data)
    check_same_data(tags[DATA_FINGERPRINT], fingerprint, f"run {run_id}")
    if trial_hash(spec, config, fingerprint) != tags[TRIAL_HASH]:
        raise ReproduceError(
            f"spec: sweep {sweep_id}'s spec no longer gives this trial's recorded identity "
            f"({TRIAL_HASH} {tags[TRIAL_HASH][:16]}); was its spec.yaml under {runs_dir} edited?"
        )
    # A trial a scheduler stopped early is trained as far as it got: the epochs before are the same.
    epochs = spec.training.epochs
    recorded = run.data.metrics
    if tags.get(STOPPED_EARLY) == "true" and EPOCHS_COMPLETED in recorded:
        epochs = int(recorded[EPOCHS_COMPLETED])
    return _RecordedTrial(sweep_id, spec, config, data, fingerprint, epochs)
