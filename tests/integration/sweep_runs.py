"""A sweep's runs as the integration tests read them back from MLflow."""

from __future__ import annotations

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
