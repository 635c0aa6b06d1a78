"""SweepStore on a real (SQLite) MLflow store: the parent and child queries, the records, the layout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from sweep.spec import parse_spec
from sweep.store import SweepNotFound, SweepRecord, SweepStore, layout
from sweep.store.template import seed_local_store
from sweep.trial import Phase, RunStatus, TrialConfig

SPEC = parse_spec(
    {
        "name": "store-test",
        "search": {"placement": ["none", "after_dropout"], "dropout": [0.0, 0.5], "seeds": 2},
        "strategy": {"tuning": "per_placement", "algorithm": "random", "num_samples": 2},
    }
)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SweepStore:
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is relative to the cwd
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    seed_local_store(uri)
    return SweepStore(MlflowClient(uri))


def new_sweep(store: SweepStore, sweep_id: str) -> SweepRecord:
    experiment = store.client.get_experiment_by_name("Default").experiment_id
    run_id = store.create_sweep(experiment, sweep_id, SPEC, {})
    store.record_spec(run_id, SPEC)
    return SweepRecord.from_run(store.client.get_run(run_id))


def test_the_parent_run_is_found_among_its_children_by_one_query(store: SweepStore) -> None:
    record = new_sweep(store, "store-test-1")
    for seed in range(3):
        store.create_trial(record, f"t{seed}", TrialConfig("none", 0.5, "adam", seed), SPEC, 1, {})
    found = store.find_sweep("store-test-1")
    assert found.parent_run_id == record.parent_run_id
    assert (found.state, found.status, found.trials_total) == ("running", RunStatus.RUNNING, SPEC.trial_count)
    assert found.spec_yaml == SPEC.to_yaml()
    assert [r.info.run_id for r in store.parent_runs("store-test-1")] == [record.parent_run_id]


def test_the_oldest_parent_of_a_sweep_id_wins_and_listings_are_newest_first(store: SweepStore) -> None:
    first = new_sweep(store, "store-test-2")
    second = new_sweep(store, "store-test-2")
    other = new_sweep(store, "store-test-3")
    assert store.find_sweep("store-test-2", with_spec=False).parent_run_id == first.parent_run_id
    newest = [r.info.run_id for r in store.parent_runs(newest_first=True)]
    assert newest == [other.parent_run_id, second.parent_run_id, first.parent_run_id]


def test_an_unknown_or_malformed_sweep_id_is_not_found(store: SweepStore) -> None:
    new_sweep(store, "store-test-4")
    with pytest.raises(SweepNotFound, match="no sweep with id 'store-test-5'"):
        store.find_sweep("store-test-5")
    with pytest.raises(SweepNotFound, match="is not a sweep id"):
        store.find_sweep("Store' or 1=1")


def test_trial_runs_carry_the_layout_and_read_back_as_records(store: SweepStore) -> None:
    record = new_sweep(store, "store-test-6")
    config = TrialConfig.from_tune(
        {"placement": "after_dropout", "dropout": 0.5, "optimizer": "adam", "seed": 1001}, SPEC
    )
    run_id = store.create_trial(record, "trial-a", config, SPEC, 2, {"extra": "x"})
    tags = store.client.get_run(run_id).data.tags
    assert tags[MLFLOW_PARENT_RUN_ID] == record.parent_run_id == tags[layout.PARENT_RUN]
    assert (tags[layout.SWEEP_ID], tags[layout.TRIAL_ID], tags[layout.ATTEMPTS]) == (
        "store-test-6",
        "trial-a",
        "2",
    )
    assert tags[layout.PHASE] == Phase.CONFIRMATION and tags["extra"] == "x"
    [trial] = store.trials(record)
    assert trial.config == config  # learning rate and phase included
    assert (trial.run_id, trial.trial_id, trial.attempts, trial.name) == (
        run_id,
        "trial-a",
        2,
        config.run_name,
    )
    assert trial.optimizer_name == "adam" and trial.status == RunStatus.RUNNING


def test_the_child_query_filters_by_status_and_closing_runs_says_why(store: SweepStore) -> None:
    record = new_sweep(store, "store-test-7")
    ids = [
        store.create_trial(record, f"t{s}", TrialConfig("none", 0.0, "adam", s), SPEC, 1, {})
        for s in range(3)
    ]
    store.client.set_terminated(ids[0], RunStatus.FINISHED)
    running = [t.run_id for t in store.trials(record, RunStatus.RUNNING)]
    assert sorted(running) == sorted(ids[1:])
    for run_id in running:
        store.end_run(run_id, RunStatus.FAILED, "its job is gone")
    store.end_sweep(record.parent_run_id, "failed", {"finished": 1, "failed": 2}, error="its job is gone")
    assert {t.status for t in store.trials(record)} == {RunStatus.FINISHED, RunStatus.FAILED}
    assert {t.error for t in store.trials(record, RunStatus.FAILED)} == {"its job is gone"}
    parent = store.find_sweep("store-test-7", with_spec=False)
    assert (parent.state, parent.status) == ("failed", RunStatus.FAILED)
    tags = store.client.get_run(record.parent_run_id).data.tags
    assert tags[layout.trials_count_tag("failed")] == "2" and tags[layout.ERROR] == "its job is gone"


def test_a_trial_run_without_params_reads_back_without_a_configuration(store: SweepStore) -> None:
    record = new_sweep(store, "store-test-8")
    tags = {layout.PARENT_RUN: record.parent_run_id, layout.SWEEP_ID: "store-test-8"}
    store.client.create_run(record.experiment_id, tags=tags)  # a driver that died before its params
    [trial] = store.trials(record)
    assert trial.config is None and trial.attempts == 1


def test_importing_the_store_imports_neither_ray_nor_tensorflow() -> None:
    code = (
        "import sys\n"
        "import sweep.store.layout\n"
        "assert 'mlflow' not in sys.modules, 'the layout imports MLflow'\n"  # a Ray worker reads it
        "import sweep.store, sweep.trial\n"
        "from sweep.store import SweepStore\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'tensorflow', 'keras'))\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_trial_summary_keeps_the_last_and_best_epochs_and_the_last_results() -> None:
    history = [
        {"epoch": 1, "loss": 0.9, "val_loss": 0.8, "val_accuracy": 0.6, "time_total_s": 1.0},
        {"epoch": 2, "loss": 0.5, "val_loss": 0.7, "val_accuracy": 0.75, "time_total_s": 2.0},
        {
            "epoch": 3,
            "loss": 0.4,
            "val_loss": 0.9,
            "val_accuracy": 0.7,
            "time_total_s": 3.0,
            "test_accuracy": 0.66,
        },
    ]
    summary = layout.trial_summary(history)
    assert summary["final_val_accuracy"] == 0.7 and summary["best_val_accuracy"] == 0.75
    assert summary["final_val_loss"] == 0.9 and summary["best_val_loss"] == 0.7  # loss: the lowest
    assert summary["best_epoch"] == 2 and summary["epochs_completed"] == 3
    assert summary["duration_s"] == 3.0 and summary["final_test_accuracy"] == 0.66
    assert "final_accuracy" not in summary  # never reported
    assert layout.trial_summary([]) == {}


def test_a_long_history_is_written_in_batches_mlflow_accepts_with_the_tags_once(store: SweepStore) -> None:
    from mlflow.entities import Metric

    experiment = store.client.get_experiment_by_name("Default").experiment_id
    run_id = store.client.create_run(experiment).info.run_id
    metrics = [Metric("loss", float(i), 0, i) for i in range(2500)]  # MLflow takes 1,000 a call
    store.log_on_run(run_id, metrics, {"note": "x" * 6000})
    assert len(store.client.get_metric_history(run_id, "loss")) == 2500
    assert store.client.get_run(run_id).data.tags["note"] == "x" * 5000
