"""A sweep's runs as the integration tests read them back from MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from sweep.results import find_sweep


def trial_runs(client: MlflowClient, sweep_id: str) -> list[Any]:
    record = find_sweep(client, sweep_id, with_spec=False)
    return list(
        client.search_runs(
            [record.experiment_id], f"tags.`mlflow.parentRunId` = '{record.parent_run_id}'", max_results=5000
        )
    )


class LocalStore:
    """The local SQLite store of a sweep whose driver is running, read from the test.

    `MlflowClient(uri)` creates and migrates a store that does not exist yet, so a client made
    while the driver is creating its own races it: two processes create the same tables and the
    driver fails ("table ... already exists"). The client is made on first use once Tune has
    started (an attempt folder exists), which is after the driver opened the store.
    """

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir
        self._client: MlflowClient | None = None

    def __call__(self) -> MlflowClient | None:
        """The client, or None while the driver may still be creating the store."""
        if self._client is None and list(self.runs_dir.glob("*/attempt-*")):
            self._client = MlflowClient(f"sqlite:///{self.runs_dir / 'mlflow.db'}")
        return self._client

    def running_trials(self) -> list[Any]:
        """The sweep's trial runs that are RUNNING now; none while the store cannot be read yet."""
        if (client := self()) is None:
            return []
        try:
            experiments = [e.experiment_id for e in client.search_experiments()]
            return list(
                client.search_runs(
                    experiments, "tags.`mlflow.parentRunId` != '' and attributes.status = 'RUNNING'"
                )
            )
        except Exception:  # the store is still being created
            return []

    @property
    def client(self) -> MlflowClient:
        """The client, once the driver has opened the store (after a wait on it)."""
        client = self()
        assert client is not None, f"no sweep started in {self.runs_dir}"
        return client
