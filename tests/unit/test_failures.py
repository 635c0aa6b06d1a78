"""Which trial failures Tune may retry, and what a failure's trace tells the driver."""

import inspect
import json
from pathlib import Path
from types import SimpleNamespace

from ray.exceptions import ActorDiedError, RayActorError, RayTaskError
from ray.tune.experiment.trial import Trial

from sweep.failures import (
    DIVERGED,
    ERROR,
    INFRASTRUCTURE,
    NODE_NOTE,
    TrialDiverged,
    actor_in_trace,
    failure_kind,
    install_retry_policy,
    last_failure,
    node_from_trace,
    node_of_actor,
)


def task_error(cause: BaseException) -> RayTaskError:
    return RayTaskError("train", f"Traceback ...\n{type(cause).__name__}: {cause}", cause)


def test_a_diverged_trial_is_diverged() -> None:
    assert failure_kind(task_error(TrialDiverged("training diverged at epoch 2: loss=nan"))) == DIVERGED


def test_an_exception_of_the_trials_own_code_is_an_error() -> None:
    assert failure_kind(task_error(ValueError("bad shape"))) == ERROR
    assert failure_kind(ValueError("raised on the driver")) == ERROR


def test_a_dead_actor_or_worker_is_lost_infrastructure() -> None:
    assert failure_kind(RayActorError()) == INFRASTRUCTURE
    assert failure_kind(ActorDiedError()) == INFRASTRUCTURE
    assert failure_kind(task_error(RayActorError())) == INFRASTRUCTURE


def test_tune_trial_still_has_the_methods_the_policy_wraps() -> None:
    # The policy replaces these two; a Ray upgrade that renames or reshapes them must fail here.
    assert list(inspect.signature(Trial.handle_error).parameters) == ["self", "exc"]
    assert list(inspect.signature(Trial.should_recover).parameters) == ["self"]


def fake_trial(failures: int, max_failures: int = 2) -> SimpleNamespace:
    return SimpleNamespace(run_metadata=SimpleNamespace(num_failures=failures), max_failures=max_failures)


def test_policy_retries_lost_infrastructure_within_max_failures_only() -> None:
    install_retry_policy()
    install_retry_policy()  # twice is harmless
    trial = fake_trial(failures=1)
    trial.sweep_failure = INFRASTRUCTURE
    assert Trial.should_recover(trial) is True
    trial.run_metadata.num_failures = 3
    assert Trial.should_recover(trial) is False


def test_policy_never_retries_divergence_or_errors() -> None:
    install_retry_policy()
    for kind in (DIVERGED, ERROR):
        trial = fake_trial(failures=1, max_failures=5)
        trial.sweep_failure = kind
        assert Trial.should_recover(trial) is False


def test_last_failure_is_the_newest_attempts_section() -> None:
    text = (
        "Failure # 1 (occurred at 2026-11-25_10-00-00)\nray.exceptions.ActorDiedError: node died\n"
        "Failure # 2 (occurred at 2026-11-25_10-01-00)\nTrialDiverged: training diverged at epoch 1\n"
    )
    assert last_failure(text) == "TrialDiverged: training diverged at epoch 1"
    assert last_failure(None) is None


def test_node_from_trace_reads_the_note_a_failing_trial_adds() -> None:
    node = {"node_id": "abc123", "node_ip": "10.0.0.2", "hostname": "w1", "pid": "42"}
    trace = f"Traceback...\nTrialDiverged: loss=nan\n{NODE_NOTE}{json.dumps(node)}\n"
    assert node_from_trace(trace) == node
    assert node_from_trace("no note here") == {}
    assert node_from_trace(f"{NODE_NOTE}{{not json}}") == {}


def test_actor_in_trace_finds_the_lost_worker_in_both_of_rays_wordings() -> None:
    unavailable = "The actor 7609b71e0efc99ea9d8c38fd01000000 is unavailable: RpcError: Socket closed"
    died = (
        "ActorDiedError: The actor died unexpectedly\n"
        "\tclass_name: ImplicitFunc\n\tactor_id: 5f0c99ea9d8c38fd0100000000000000\n"
    )
    assert actor_in_trace(unavailable) == "7609b71e0efc99ea9d8c38fd01000000"
    assert actor_in_trace(died) == "5f0c99ea9d8c38fd0100000000000000"
    assert actor_in_trace("ValueError: bad shape") is None
    assert actor_in_trace(None) is None
    assert node_of_actor(None) == {}


def test_a_retry_forgets_a_checkpoint_folder_that_is_gone_and_says_why(tmp_path: Path) -> None:
    # Tune would fail the retry for good restoring from a folder that no longer exists.
    from ray.train._internal.session import _TrainingResult
    from ray.tune import Checkpoint

    from sweep.failures import forget_unusable_checkpoint

    trial = Trial("__fake", stub=True)
    assert forget_unusable_checkpoint(trial) is None  # nothing to forget
    good = tmp_path / "checkpoint_000000"
    good.mkdir()
    (good / "checkpoint.json").write_text('{"format": 1, "epoch": 2, "trial": "t"}')
    manager = trial.run_metadata.checkpoint_manager
    manager.register_checkpoint(_TrainingResult(checkpoint=Checkpoint.from_directory(str(good)), metrics={}))
    assert forget_unusable_checkpoint(trial) is None and trial.checkpoint is not None  # kept
    gone = tmp_path / "checkpoint_000001"
    manager.register_checkpoint(_TrainingResult(checkpoint=Checkpoint.from_directory(str(gone)), metrics={}))
    reason = forget_unusable_checkpoint(trial)
    assert reason is not None and "checkpoint_000001" in reason and "incomplete" in reason
    assert trial.checkpoint is None  # the retry starts over
