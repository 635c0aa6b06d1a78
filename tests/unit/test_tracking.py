"""SweepTracker on a real (SQLite) MLflow store: parents, resume policy, attempts, node tags."""

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sweep.failures import DIVERGED, INFRASTRUCTURE
from sweep.spec import parse_spec
from sweep.store import SweepStore
from sweep.store.layout import (
    ATTEMPTS,
    FAILURE,
    JOB_TAG,
    NODE_TAGS,
    PARENT_RUN,
    SWEEP_ID,
    TRIAL_ID,
    attempt_tag,
)
from sweep.tracking import SweepTracker, local_tracking_uri
from sweep.training.checkpoints import META_FILE
from sweep.trial import RunStatus
from sweep.trial_resume import DRIVER_LOST

SPEC = parse_spec(
    {
        "name": "tracker-test",
        "search": {"placement": ["none"], "dropout": [0.0], "optimizer": [{"name": "adam"}], "seeds": 60},
        "training": {"epochs": 2},
        "tracking": {"experiment": "tracker-test"},
    }
)
NODE = {"node_id": "n" * 56, "node_ip": "127.0.0.1", "hostname": "host-a", "pid": "4242"}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    monkeypatch.chdir(tmp_path)
    return local_tracking_uri(tmp_path), tmp_path


def config(seed: int) -> dict:
    return {"placement": "none", "dropout": 0.0, "optimizer": "adam", "seed": seed}


def epoch(n: int, **extra: object) -> dict:
    return {"epoch": n, "loss": 0.5, "accuracy": 0.7, "val_loss": 0.6, "val_accuracy": 0.65, **NODE, **extra}


def test_resume_finds_the_one_parent_among_more_than_50_children(store: tuple[str, Path]) -> None:
    uri, runs = store
    first = SweepTracker(uri, SPEC, "tracker-test-1", runs)
    first.start_sweep()
    for seed in range(55):
        first.start_trial(f"t{seed}", config(seed))
        first.end_trial(f"t{seed}", [epoch(1), epoch(2)])
    again = SweepTracker(uri, SPEC, "tracker-test-1", runs)
    done = again.start_sweep()
    assert again.parent_run_id == first.parent_run_id
    assert len(done) == 55
    assert len(SweepStore(MlflowClient(uri)).parent_runs("tracker-test-1")) == 1


def test_resume_reruns_lost_trials_not_diverged_ones(store: tuple[str, Path]) -> None:
    uri, runs = store
    first = SweepTracker(uri, SPEC, "tracker-test-2", runs)
    first.start_sweep()
    first.start_trial("lost", config(0))
    first.end_trial("lost", [epoch(1)], error="ActorDiedError: node died", failure=INFRASTRUCTURE)
    first.start_trial("nan", config(1))
    first.end_trial("nan", [], error="TrialDiverged: loss=nan", failure=DIVERGED, node=NODE)
    first.start_trial("cut", config(2))  # left RUNNING: the driver was killed
    again = SweepTracker(uri, SPEC, "tracker-test-2", runs)
    done = again.start_sweep()
    assert {key.seed for key in done} == {1}  # only the diverged trial counts as ended
    client = MlflowClient(uri)
    left = again.children()
    assert [r.data.tags[FAILURE] for r in left] == [DIVERGED]
    assert left[0].data.tags[NODE_TAGS["node_id"]] == NODE["node_id"]  # no epoch reported it: the error did
    rerun = again.start_trial("lost-again", config(0))
    assert client.get_run(rerun).data.tags[ATTEMPTS] == "2"


def test_a_retried_trial_keeps_one_run_with_its_attempts_and_no_duplicate_epochs(
    store: tuple[str, Path],
) -> None:
    uri, runs = store
    tracker = SweepTracker(uri, SPEC, "tracker-test-3", runs)
    tracker.start_sweep()
    run_id = tracker.start_trial("t0", config(0))
    tracker.record_result("t0", epoch(1, pid="1"))
    tracker.flush()
    running = MlflowClient(uri).get_run(run_id)  # a running trial already shows where it runs
    assert running.info.status == RunStatus.RUNNING
    assert running.data.tags[NODE_TAGS["node_id"]] == NODE["node_id"]
    assert running.data.tags[NODE_TAGS["pid"]] == "1"
    tracker.retry_trial("t0", "ActorDiedError: the worker died", {"node_id": "dead-node"})
    tracker.start_trial("t0", config(0))  # Tune starts the next attempt: same run
    history = [epoch(1, pid="2"), epoch(2, pid="2")]
    for result in history:
        tracker.record_result("t0", result)
    tracker.end_trial("t0", history)
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.status == RunStatus.FINISHED
    assert run.data.tags[ATTEMPTS] == "2"
    assert run.data.tags[attempt_tag(1, "error")] == "ActorDiedError: the worker died"
    assert run.data.tags[attempt_tag(1, "node_id")] == "dead-node"
    assert run.data.tags[NODE_TAGS["pid"]] == "2"
    assert [m.step for m in client.get_metric_history(run_id, "val_accuracy")] == [1, 2]
    assert len(tracker.children()) == 1


def test_a_resume_outside_the_job_drops_the_jobs_tag(store: tuple[str, Path]) -> None:
    uri, runs = store
    job_tags = {JOB_TAG: "sweep-tracker-test-4", "sweep.idempotency_key_sha256": "ab12"}
    first = SweepTracker(uri, SPEC, "tracker-test-4", runs, run_tags=job_tags)
    first.start_sweep()
    tags = MlflowClient(uri).get_run(first.parent_run_id).data.tags
    assert tags[JOB_TAG] == "sweep-tracker-test-4"
    assert tags["sweep.idempotency_key_sha256"] == "ab12"
    SweepTracker(uri, SPEC, "tracker-test-4", runs).start_sweep()  # e.g. `sweep resume` on a laptop
    tags = MlflowClient(uri).get_run(first.parent_run_id).data.tags
    assert JOB_TAG not in tags


def test_resume_drops_a_run_created_just_before_the_driver_died(store: tuple[str, Path]) -> None:
    uri, runs = store
    first = SweepTracker(uri, SPEC, "tracker-test-5", runs)
    first.start_sweep()
    client = MlflowClient(uri)
    # create_run landed, the params did not: the driver was SIGKILLed in between
    half = client.create_run(
        first.experiment_id, tags={PARENT_RUN: first.parent_run_id, SWEEP_ID: "tracker-test-5"}
    )
    again = SweepTracker(uri, SPEC, "tracker-test-5", runs)
    assert again.start_sweep() == frozenset()
    assert client.get_run(half.info.run_id).info.lifecycle_stage == "deleted"


def _checkpoint(folder: Path, epochs: int) -> None:
    """A checkpoint's record as Tune's trial would leave it (the arrays are the worker's concern)."""
    folder.mkdir(parents=True)
    history = [{k: v for k, v in epoch(n).items() if k not in NODE} for n in range(1, epochs + 1)]
    (folder / META_FILE).write_text(
        json.dumps({"format": 1, "trial": "t", "epoch": epochs, "history": history})
    )


def test_resume_continues_a_trial_with_a_checkpoint_in_its_own_run(store: tuple[str, Path]) -> None:
    uri, runs = store
    first = SweepTracker(uri, SPEC, "tracker-test-6", runs)
    first.start_sweep()
    run_id = first.start_trial("t0", config(0))
    first.start_trial("t1", config(1))  # no checkpoint: runs again from the start, in a new run
    first.record_result("t0", epoch(1, resumed_from_epoch=0))
    first.flush()  # epoch 2's write never left the driver, which died here
    _checkpoint(runs / "tracker-test-6" / "attempt-1" / "t0" / "checkpoint_000000", 2)

    again = SweepTracker(uri, SPEC, "tracker-test-6", runs)
    assert again.start_sweep() == frozenset()
    assert list(again.resume_index()) == ["none-d0-adam-s0-lr0.001"]  # adam's default rate
    assert [r["epoch"] for r in again.resumed_history(config(0))] == [1, 2]
    assert again.start_trial("u0", config(0)) == run_id  # the same run goes on
    assert again.start_trial("u1", config(1)) != run_id
    history = [epoch(n, resumed_from_epoch=2) for n in (3,)]
    again.record_result("u0", history[0])
    again.end_trial("u0", again.resumed_history(config(0)) + history)
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.status == RunStatus.FINISHED
    assert run.data.tags[ATTEMPTS] == "2" and run.data.tags[TRIAL_ID] == "u0"
    assert run.data.tags[attempt_tag(1, "error")] == DRIVER_LOST
    assert run.data.tags[attempt_tag(2, "resumed_from_epoch")] == "2"
    assert [m.step for m in client.get_metric_history(run_id, "val_accuracy")] == [1, 2, 3]
    assert run.data.metrics["epochs_completed"] == 3
    assert len(again.children()) == 2  # the run without a checkpoint was replaced, not kept


def test_a_retry_records_where_it_began_and_why_a_checkpoint_was_refused(store: tuple[str, Path]) -> None:
    uri, runs = store
    tracker = SweepTracker(uri, SPEC, "tracker-test-7", runs)
    tracker.start_sweep()
    run_id = tracker.start_trial("t0", config(0))
    tracker.record_result("t0", epoch(1, resumed_from_epoch=0))
    tracker.retry_trial("t0", "ActorDiedError: the worker died", {})
    reason = "/x/checkpoint_000000: state.npz is unreadable: BadZipFile: File is not a zip file"
    history = [epoch(n, resumed_from_epoch=0, checkpoint_error=reason) for n in (1, 2)]
    for result in history:
        tracker.record_result("t0", result)
    tracker.end_trial("t0", history)
    tags = MlflowClient(uri).get_run(run_id).data.tags
    assert tags[attempt_tag(2, "resumed_from_epoch")] == "0"
    assert tags[attempt_tag(2, "checkpoint_error")] == reason
    assert attempt_tag(1, "resumed_from_epoch") not in tags  # the first attempt began at the start


def test_a_trial_lost_to_infrastructure_resumes_from_its_checkpoint_without_its_old_failure(
    store: tuple[str, Path],
) -> None:
    uri, runs = store
    first = SweepTracker(uri, SPEC, "tracker-test-8", runs)
    first.start_sweep()
    run_id = first.start_trial("t0", config(0))
    first.end_trial("t0", [epoch(1), epoch(2)], error="ActorDiedError: node died", failure=INFRASTRUCTURE)
    _checkpoint(runs / "tracker-test-8" / "attempt-1" / "t0" / "checkpoint_000000", 2)
    again = SweepTracker(uri, SPEC, "tracker-test-8", runs)
    again.start_sweep()
    assert again.start_trial("u0", config(0)) == run_id
    tags = MlflowClient(uri).get_run(run_id).data.tags
    assert FAILURE not in tags and "error" not in tags  # no longer failed: it runs again
    assert tags[attempt_tag(1, "error")] == "ActorDiedError: node died"


def test_a_trial_records_the_gpus_ray_gave_it_and_its_device(store: tuple[str, Path]) -> None:
    uri, runs = store
    tracker = SweepTracker(uri, SPEC, "tracker-test-gpu", runs)
    tracker.start_sweep()
    on_gpu = tracker.start_trial("gpu", config(0))
    history = [epoch(1, gpu_ids="0", device="NVIDIA H200"), epoch(2, gpu_ids="0", device="NVIDIA H200")]
    for result in history:
        tracker.record_result("gpu", result)
    tracker.end_trial("gpu", history)
    on_cpu = tracker.start_trial("cpu", config(1))
    tracker.record_result("cpu", epoch(1, gpu_ids="", device="cpu"))
    tracker.end_trial("cpu", [epoch(1, gpu_ids="", device="cpu")])
    failed = tracker.start_trial("failed", config(2))  # before its first epoch: the error's note tells
    tracker.end_trial("failed", [], error="boom", node={**NODE, "gpu_ids": "1", "device": "cpu"})
    client = MlflowClient(uri)
    tags = {
        name: client.get_run(run).data.tags
        for name, run in [("gpu", on_gpu), ("cpu", on_cpu), ("failed", failed)]
    }
    assert (tags["gpu"][NODE_TAGS["gpu_ids"]], tags["gpu"][NODE_TAGS["device"]]) == ("0", "NVIDIA H200")
    assert tags["cpu"][NODE_TAGS["device"]] == "cpu" and NODE_TAGS["gpu_ids"] not in tags["cpu"]
    assert (tags["failed"][NODE_TAGS["gpu_ids"]], tags["failed"][NODE_TAGS["device"]]) == ("1", "cpu")
