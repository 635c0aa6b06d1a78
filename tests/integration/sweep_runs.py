"""A sweep's runs as the integration tests read them back from MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from sweep.store import SweepStore
from sweep.store.template import open_store


def trial_runs(client: MlflowClient, sweep_id: str) -> list[Any]:
    """The trial runs of sweep `sweep_id`, as the product's store reads them."""
    store = SweepStore(client)
    return store.trial_runs(store.find_sweep(sweep_id, with_spec=False))


def running_trial_runs(client: MlflowClient) -> list[Any]:
    """The trial runs in the store that are RUNNING now, of every sweep."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    return list(
        client.search_runs(experiments, "tags.`mlflow.parentRunId` != '' and attributes.status = 'RUNNING'")
    )


class LocalStore:
    """The local SQLite store of a sweep whose driver is running, read from the test as the CLI
    reads it (`open_store`): a store the driver has not made yet is seeded from the template in one
    step, never migrated in place by MLflow, which the driver's own creation would race."""

    def __init__(self, runs_dir: Path) -> None:
        self.client: MlflowClient = open_store(f"sqlite:///{(runs_dir / 'mlflow.db').resolve()}")

    def running_trials(self) -> list[Any]:
        """The sweep's trial runs that are RUNNING now; none when a read fails (the next poll
        reads again)."""
        try:
            return running_trial_runs(self.client)
        except Exception:
            return []
