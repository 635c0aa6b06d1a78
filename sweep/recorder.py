"""Ray Tune's trial events, on the driver, into MLflow runs and progress events."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray.tune import Callback

from sweep.failures import (
    ERROR,
    INFRASTRUCTURE,
    KINDS,
    actor_in_trace,
    forget_unusable_checkpoint,
    last_failure,
    node_from_trace,
    node_of_actor,
    one_line_error,
)
from sweep.tracking import SweepTracker
from sweep.trial import RunStatus, TrialConfig
from sweep.trial_checkpoints import ended_trial_checkpoints, remove

KINDS_FOR_GOOD = tuple(k for k in KINDS if k != INFRASTRUCTURE)  # failures `sweep resume` keeps
RETRYING = "RETRYING"  # a trial's event when its worker or node was lost and Tune runs it again


@dataclass(frozen=True)
class TrialEvent:
    """A trial that just ended (or lost an attempt and runs again), for progress displays."""

    name: str
    status: str  # RunStatus.FINISHED, RunStatus.FAILED, or RETRYING
    value: float | None  # the strategy metric's last value
    error: str | None
    done: int
    failed: int
    total: int
    best: float | None


ProgressFn = Callable[[TrialEvent], None]


class TrackingLost(RuntimeError):
    """A write to the tracking store failed for good: the sweep stops rather than lose results."""


def _plain_callback() -> Callback:
    return Callback()


def _error_file(trial: Any) -> str | None:
    # Tune writes the local error file before calling the hooks; storage gets it only later.
    path = trial.error_file
    return Path(path).read_text(errors="replace") if path and Path(path).is_file() else None


class TrialRecorder(Callback):
    """Tune events -> MLflow child runs (through `tracker`) and progress events.

    MLflow writes run in order on one background thread, so Tune's loop never waits on the store
    (a trial's `tune.report` blocks until the driver has taken its result). While the tracking
    server is down the writes wait and retry (sweep.retrying) and the trials go on; a write that
    fails for good stops the sweep at Tune's next step.
    """

    def __init__(
        self, tracker: SweepTracker, metric: str, mode: str, total: int, progress: ProgressFn | None
    ) -> None:
        self.tracker = tracker
        self.metric, self.mode, self.total, self.progress = metric, mode, total, progress
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.done = 0
        self.failed = 0
        self.retried = 0
        self.best: float | None = None
        self.first_start: float | None = None  # time.monotonic() of the first trial's start
        self.last_end: float | None = None
        self.io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep-mlflow")
        self.io_errors: list[BaseException] = []
        self.keep_checkpoints = tracker.spec.resources.keep_checkpoints_after

    def __reduce__(self) -> Any:
        # Tune pickles its run config into the experiment folder; the recorder stays here.
        return (_plain_callback, ())

    def _write(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        def keep_error(future: Any) -> None:
            if future.exception() is not None:
                self.io_errors.append(future.exception())

        if self.io_errors:
            return  # the store failed: nothing later may land out of order
        self.io.submit(fn, *args, **kwargs).add_done_callback(keep_error)

    def check(self) -> None:
        """Raise TrackingLost if a write failed for good."""
        if self.io_errors:
            err = self.io_errors[0]
            raise TrackingLost(f"MLflow writes failed: {type(err).__name__}: {err}") from err

    def settle(self) -> None:
        """Wait for every write queued so far; the recorder stays open for more trials."""
        self.io.submit(lambda: None).result()  # one writer thread: done once all before it are
        self.check()

    def drain(self) -> None:
        """Wait for every queued MLflow write; raise the first that failed."""
        self.close()
        self.check()

    def close(self) -> None:
        """Wait for every queued MLflow write and take no more (a failed one is kept for `check`)."""
        self.io.shutdown(wait=True)

    def expect(self, total: int) -> None:
        """The trials this attempt runs in all, as now known (an adaptive sweep learns it by rounds)."""
        self.total = total

    @property
    def ended(self) -> int:
        """Trials of this attempt that ended, finished or failed."""
        return self.done + self.failed

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        self.check()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # Called again for each retry's new actor: the epochs so far stay (see on_trial_result).
        self.first_start = self.first_start or time.monotonic()
        if trial.trial_id not in self.history:  # a trial an earlier driver left a checkpoint of
            self.history[trial.trial_id] = self.tracker.resumed_history(dict(trial.config))
        self._write(self.tracker.start_trial, trial.trial_id, dict(trial.config))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        # A retry continues after its checkpoint's epoch (or from the first): what it trains anew
        # replaces the lost attempt's epochs from there on.
        epoch = result.get("epoch", 0)
        kept = [r for r in self.history.get(trial.trial_id, []) if r.get("epoch", 0) < epoch]
        self.history[trial.trial_id] = [*kept, result]
        self._write(self.tracker.record_result, trial.trial_id, dict(result))

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        trace = last_failure(_error_file(trial))
        error = one_line_error(trace)
        self.retried += 1
        trial_id = trial.trial_id
        unusable = forget_unusable_checkpoint(trial)  # before Tune restores the retry from it

        def retry() -> None:  # on the writer thread: the actor lookup is a round trip to the GCS
            node = node_from_trace(trace) or node_of_actor(actor_in_trace(trace))
            self.tracker.retry_trial(trial_id, error, node, checkpoint_error=unusable)

        self._write(retry)
        self._emit(trial, RETRYING, None, error)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial, None, None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        trace = _error_file(trial)
        self._ended(trial, trace, getattr(trial, "sweep_failure", None) or ERROR)

    def _ended(self, trial: Any, trace: str | None, failure: str | None) -> None:
        self.last_end = time.monotonic()
        history = self.history.pop(trial.trial_id, [])
        error = one_line_error(last_failure(trace)) if failure else None
        self._write(
            self.tracker.end_trial,
            trial.trial_id,
            history,
            error=error,
            trace=trace,
            failure=failure,
            node=node_from_trace(last_failure(trace)) if failure else None,
        )
        if failure in (None, *KINDS_FOR_GOOD) and not self.keep_checkpoints:
            self._write(self._remove_checkpoints, trial.trial_id)
        value = history[-1].get(self.metric) if history else None
        if error:
            self.failed += 1
        else:
            self.done += 1
            if value is not None and (
                self.best is None or (value > self.best if self.mode == "max" else value < self.best)
            ):
                self.best = value
        self._emit(trial, RunStatus.FAILED if error else RunStatus.FINISHED, value, error)

    def _remove_checkpoints(self, trial_id: str) -> None:
        """A trial that ended for good needs its checkpoints no more (an infrastructure failure
        keeps them: `sweep resume` continues it)."""
        sweep_dir = self.tracker.sweep_dir
        if sweep_dir is None:
            return
        remove(ended_trial_checkpoints(sweep_dir, trial_id, self.tracker.resumed_from.get(trial_id)))

    def _emit(self, trial: Any, status: str, value: float | None, error: str | None) -> None:
        if self.progress:
            self.progress(
                TrialEvent(
                    TrialConfig.from_tune(trial.config).run_name,
                    status,
                    value,
                    error,
                    self.done,
                    self.failed,
                    self.total,
                    self.best,
                )
            )
