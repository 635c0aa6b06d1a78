"""MLflow: one parent run per sweep, one nested child run per trial, statuses kept honest."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

from sweep.failures import INFRASTRUCTURE
from sweep.reproducibility import DATA_FINGERPRINT, TRIAL_HASH, check_same_data, sweep_record, trial_hash
from sweep.retrying import RetryingClient
from sweep.settings import local_tracking_uri as local_tracking_uri
from sweep.spec import SweepSpec
from sweep.store import SweepRecord, SweepStore
from sweep.store.layout import (
    ATTEMPTS,
    ERROR,
    ERROR_ARTIFACT,
    FAILURE,
    JOB_TAG,
    METRICS,
    MODEL_ARGS,
    MODEL_BUILDER,
    NODE_TAGS,
    STATE_CANCELLED,
    STATE_QUEUED,
    STOPPED_EARLY,
    SWEEP_STATE,
    attempt_tag,
    trial_summary,
)
from sweep.store.storage import experiment_id
from sweep.store.template import seed_local_store
from sweep.trial import RunStatus, TrialConfig, TrialKey
from sweep.trial_resume import Resumable, reopen_run, resumable_trial

_FLUSH_EVERY_S = 2.0


def trial_run_name(config: dict[str, Any]) -> str:
    """The run name of a Ray Tune trial's configuration (`TrialConfig.run_name`)."""
    return TrialConfig.from_tune(config).run_name


class SweepCancelled(RuntimeError):
    """The sweep was cancelled while its job waited for a slot: its driver must not run it."""


class SweepTracker:
    """The sweep's parent run and its trials' child runs, through one MlflowClient.

    Not thread-safe, and need not be: the runner makes every call from one thread at a time (its
    single MLflow writer thread while Tune runs, then the driver's main thread once that has drained).
    """

    def __init__(
        self,
        tracking_uri: str,
        spec: SweepSpec,
        sweep_id: str,
        runs_dir: Path | None,
        run_tags: dict[str, str] | None = None,
        data_fingerprint: str | None = None,
    ):
        seed_local_store(tracking_uri)  # a new local store: copied, not migrated from scratch
        self.client: Any = RetryingClient(MlflowClient(tracking_uri))
        self.store = SweepStore(self.client)
        self.spec = spec
        self.sweep_id = sweep_id
        self.run_tags = run_tags or {}  # set on the parent run at every start (Ray job id, ...)
        self.data_fingerprint = data_fingerprint
        # The driver's versions: one image runs driver and workers (services/Dockerfile).
        self.repro_tags = sweep_record(spec, data_fingerprint)  # on the parent and every child run
        self.experiment_id = experiment_id(self.client, spec.tracking.experiment, runs_dir)
        self.parent_run_id = ""
        self._children: dict[str, str] = {}  # trial id -> run id of open child runs
        self._ended: set[str] = set()
        self._pending: dict[str, list[Metric]] = {}
        self._last_step: dict[str, int] = {}  # trial id -> last epoch queued for its run
        self._nodes: dict[str, dict[str, str]] = {}  # trial id -> where its latest attempt ran
        self._node_tags: dict[str, dict[str, str]] = {}  # node tags not yet written
        self._prior_attempts: dict[TrialKey, int] = {}  # from earlier drivers
        self._resumable: dict[TrialKey, Resumable] = {}  # runs an earlier driver left a checkpoint of
        self.resumed_from: dict[str, str] = {}  # trial id -> the earlier driver's checkpoint it took
        self._attempt: dict[str, int] = {}  # trial id -> its current attempt
        self._noted_attempt: dict[str, int] = {}  # trial id -> the attempt whose start is recorded
        self.runs_dir = runs_dir
        self.curves: list[dict[str, Any]] = []  # per-epoch rows of this attempt's ended trials
        self._last_flush = time.monotonic()

    # --- the parent run ---------------------------------------------------------------
    def find_parent(self) -> str | None:
        """The run id of this sweep's parent run in its experiment (the oldest), or None."""
        parents = self.store.parent_runs(self.sweep_id, [self.experiment_id])
        return parents[0].info.run_id if parents else None

    @property
    def record(self) -> SweepRecord:
        """The parent run as the tracker knows it (after `start_sweep`), for reading its trials."""
        return SweepRecord(
            self.sweep_id,
            self.parent_run_id,
            self.experiment_id,
            "running",
            RunStatus.RUNNING,
            self.spec.trial_count,
            None,
        )

    def start_sweep(self) -> frozenset[TrialKey]:
        """Create the parent run, take over the one its submitter left queued, or reopen it when
        the sweep is resumed.

        Returns the keys of trials an earlier attempt ended for good (FINISHED, or FAILED for a
        reason of the trial's own: a retry would fail the same way).
        """
        existing = self.find_parent()
        if existing:
            return self._reopen(existing)
        tags = {**self.repro_tags, **self.run_tags}
        self.parent_run_id = self.store.create_sweep(self.experiment_id, self.sweep_id, self.spec, tags)
        # Two drivers started the same sweep id at once: the older parent wins, the newer goes.
        oldest = self.find_parent()
        if oldest and oldest != self.parent_run_id:
            self.client.delete_run(self.parent_run_id)
            return self._reopen(oldest)
        self.store.record_spec(self.parent_run_id, self.spec)
        return frozenset()

    def _reopen(self, run_id: str) -> frozenset[TrialKey]:
        tags = self.client.get_run(run_id).data.tags
        state, job = tags.get(SWEEP_STATE), self.run_tags.get(JOB_TAG)
        if state == STATE_CANCELLED and job and tags.get(JOB_TAG) == job:
            raise SweepCancelled(f"sweep {self.sweep_id} was cancelled while it was queued: not started")
        if self.data_fingerprint:  # refused before anything of the sweep changes
            check_same_data(tags.get(DATA_FINGERPRINT), self.data_fingerprint, f"sweep {self.sweep_id}")
        self.parent_run_id = run_id
        if state == STATE_QUEUED:  # created at submit time (sweep.admission): this driver takes it over
            self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in self.repro_tags.items()])
        # Resumed outside the Ray job that started it: that job no longer speaks for the sweep.
        if JOB_TAG not in self.run_tags and JOB_TAG in tags:
            self.client.delete_tag(run_id, JOB_TAG)
        self.store.reopen_sweep(run_id, self.run_tags)
        return self._adopt_children()

    @property
    def sweep_dir(self) -> Path | None:
        """The sweep's folder (Tune's storage: its checkpoints), when the tracker was given one."""
        return self.runs_dir / self.sweep_id if self.runs_dir is not None else None

    def resume_index(self) -> dict[str, str]:
        """Checkpoint name -> folder of each trial this driver continues (sweep.trial_checkpoints)."""
        return {r.name: str(r.checkpoint) for r in self._resumable.values()}

    def resumed_history(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """The epochs a resumed trial had done, as its checkpoint recorded them ([] if not resumed)."""
        found = self._resumable.get(TrialConfig.from_tune(config, self.spec).key)
        return list(found.history) if found else []

    def _adopt_children(self) -> frozenset[TrialKey]:
        """On resume: keep trials that ended for good; the rest run again.

        Runs left RUNNING by a killed driver, KILLED by an interrupt or FAILED because their worker
        or node was lost run again, counting the attempts they already had: in the same run from
        their latest checkpoint when they have one (`sweep.trial_resume`), else from the start in a
        new run (the old one is deleted; MLflow keeps it among deleted runs).
        """
        done = set()
        for trial in self.store.trials(self.record):
            if trial.config is None:
                # The driver died between creating this run and logging its params: nothing to keep.
                self.client.delete_run(trial.run_id)
                continue
            key, status = trial.config.key, trial.status
            own_failure = status == RunStatus.FAILED and trial.failure != INFRASTRUCTURE
            if status == RunStatus.FINISHED or own_failure:
                done.add(key)
                continue
            resumable = resumable_trial(trial, self.sweep_dir) if key not in self._resumable else None
            if resumable is not None:
                self._resumable[key] = resumable
                continue
            self._prior_attempts[key] = self._prior_attempts.get(key, 0) + trial.attempts
            self.client.delete_run(trial.run_id)
        return frozenset(done)

    def children(self) -> list[Any]:
        """The sweep's trial runs, as MLflow holds them now."""
        return self.store.trial_runs(self.record)

    def ended_counts(self) -> dict[str, int]:
        """How many child runs, of every attempt, ended FINISHED and FAILED."""
        statuses = [run.info.status for run in self.children()]
        return {"finished": statuses.count(RunStatus.FINISHED), "failed": statuses.count(RunStatus.FAILED)}

    def finish_sweep(self, state: str, counts: dict[str, int]) -> None:
        """End the parent run: FINISHED when the sweep completed, KILLED or FAILED if not."""
        self.close_open_trials(RunStatus.KILLED, "the sweep stopped before this trial ended")
        self.store.end_sweep(self.parent_run_id, state, counts)

    def set_patience(self, seconds: float) -> None:
        """How long each call waits for an unreachable store from now on (sweep.retrying)."""
        self.client.patience = seconds

    def record_adaptive(self, calls: dict[str, str], counts: dict[str, int]) -> None:
        """An adaptive sweep's look on the parent: each comparison's call, trials run and saved."""
        self.store.log_on_sweep(self.parent_run_id, counts, calls)

    # --- child runs ---------------------------------------------------------------------
    def start_trial(self, trial_id: str, config: dict[str, Any]) -> str:
        if trial_id in self._children:
            return self._children[trial_id]
        if trial_id in self._ended:
            return ""
        trial = TrialConfig.from_tune(config, self.spec)  # per_placement: its phase, for the verdict
        resumed = self._resumable.get(trial.key)
        if resumed is not None and resumed.run_id not in self._children.values():
            return self._continue_trial(trial_id, resumed)
        attempts = 1 + self._prior_attempts.get(trial.key, 0)
        repro = dict(self.repro_tags)
        if self.data_fingerprint:
            repro[TRIAL_HASH] = trial_hash(self.spec, config, self.data_fingerprint)
        if self.spec.model.builder is not None:  # which network the trial trained
            repro[MODEL_BUILDER] = self.spec.model.builder
            repro[MODEL_ARGS] = json.dumps(self.spec.model.args, sort_keys=True)
        run_id = self.store.create_trial(self.record, trial_id, trial, self.spec, attempts, repro)
        self._children[trial_id] = run_id
        self._attempt[trial_id] = attempts
        return run_id

    def _continue_trial(self, trial_id: str, resumed: Resumable) -> str:
        """Reopen the run of a trial an earlier driver left a checkpoint of: the next attempt."""
        attempts, recorded = reopen_run(self.client, self.store, resumed, trial_id)
        self._last_step[trial_id] = recorded
        self._children[trial_id] = resumed.run_id
        self._attempt[trial_id] = attempts
        self.resumed_from[trial_id] = str(resumed.checkpoint)
        return resumed.run_id

    def retry_trial(
        self, trial_id: str, error: str, node: dict[str, str], checkpoint_error: str | None = None
    ) -> None:
        """Tune starts another attempt of a trial whose worker or node was lost: same run.

        `checkpoint_error`: why the new attempt cannot continue from the trial's checkpoint.
        """
        run_id = self._children.get(trial_id)
        if run_id is None:
            return
        attempts = int(self.client.get_run(run_id).data.tags.get(ATTEMPTS, "1")) + 1
        lost = attempts - 1
        where = node or self._nodes.get(trial_id, {})
        tags = {ATTEMPTS: str(attempts), attempt_tag(lost, "error"): error[:5000]}
        if where.get("node_id"):
            tags[attempt_tag(lost, "node_id")] = where["node_id"]
        if checkpoint_error:
            tags[attempt_tag(attempts, "checkpoint_error")] = checkpoint_error[:5000]
        self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        self._attempt[trial_id] = attempts

    def record_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Queue one epoch's metrics; written in batches, not one call per value.

        A retried trial continues from its latest checkpoint, or starts again from its first epoch:
        epochs an earlier attempt already recorded are not written a second time. An attempt's
        first result records where it began (`trial.attempt_N.resumed_from_epoch`, from attempt 2
        on) and why a checkpoint could not be restored (`trial.attempt_N.checkpoint_error`).
        """
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        if "node_id" in result:
            where = {k: str(result[k]) for k in NODE_TAGS if k in result}
            if where != self._nodes.get(trial_id):  # a running trial shows where it runs
                self._node_tags.setdefault(trial_id, {}).update(
                    {NODE_TAGS[k]: v for k, v in where.items() if v}
                )
            self._nodes[trial_id] = where
        self._note_attempt_start(trial_id, result)
        if step <= self._last_step.get(trial_id, 0):
            return
        self._last_step[trial_id] = step
        now = int(time.time() * 1000)
        metrics = [Metric(m, float(result[m]), now, step) for m in METRICS if m in result]
        self._pending.setdefault(trial_id, []).extend(metrics)
        due = time.monotonic() - self._last_flush > _FLUSH_EVERY_S
        if due:
            self.flush()

    def _note_attempt_start(self, trial_id: str, result: dict[str, Any]) -> None:
        attempt = self._attempt.get(trial_id, 1)
        if "resumed_from_epoch" not in result or self._noted_attempt.get(trial_id) == attempt:
            return
        self._noted_attempt[trial_id] = attempt
        tags = {}
        if attempt > 1:
            tags[attempt_tag(attempt, "resumed_from_epoch")] = str(int(result["resumed_from_epoch"]))
        if result.get("checkpoint_error"):
            tags[attempt_tag(attempt, "checkpoint_error")] = str(result["checkpoint_error"])[:5000]
        self._node_tags.setdefault(trial_id, {}).update(tags)

    def flush(self, trial_id: str | None = None) -> None:
        ids = [trial_id] if trial_id else list(self._pending.keys() | self._node_tags.keys())
        batches = {t: self._pending.pop(t, []) for t in ids}
        self._last_flush = time.monotonic()
        for tid, metrics in batches.items():
            run_id = self._children.get(tid)
            tags = self._node_tags.pop(tid, {})
            if not run_id or not (metrics or tags):
                continue
            self.store.log_on_run(run_id, metrics, tags)

    def end_trial(
        self,
        trial_id: str,
        history: list[dict[str, Any]],
        error: str | None = None,
        trace: str | None = None,
        failure: str | None = None,
        node: dict[str, str] | None = None,
    ) -> None:
        """Write the summary and end the child run FINISHED, or FAILED with its error.

        `failure` says why it failed (sweep.failures); `node` where, when no epoch reported it.
        """
        run_id = self._children.get(trial_id)
        if run_id is None:
            return
        epochs = self._pending.pop(trial_id, [])  # written with the summary, in one batch
        summary = trial_summary(history)
        tags: dict[str, str] = self._node_tags.pop(trial_id, {})
        if history:
            last_epoch = history[-1].get("epoch", 0)
            tags[STOPPED_EARLY] = str(error is None and last_epoch < self.spec.training.epochs).lower()
        where = {**self._nodes.get(trial_id, {}), **(node or {})}  # the last epoch's, or the error's
        tags.update({NODE_TAGS[k]: v for k, v in where.items() if k in NODE_TAGS and v})
        if error:
            tags[ERROR] = error
            tags[FAILURE] = failure or "error"
        now = int(time.time() * 1000)
        metrics = epochs + [Metric(k, v, now, 0) for k, v in summary.items()]
        self.store.log_on_run(run_id, metrics, tags)
        if trace:
            self.client.log_text(run_id, trace, ERROR_ARTIFACT)
        self.client.set_terminated(run_id, RunStatus.FAILED if error else RunStatus.FINISHED)
        self._children.pop(trial_id, None)
        self._nodes.pop(trial_id, None)
        self._node_tags.pop(trial_id, None)
        self._attempt.pop(trial_id, None)
        self._noted_attempt.pop(trial_id, None)
        self._ended.add(trial_id)
        self.curves += [
            {"run_id": run_id, "epoch": int(r["epoch"]), **{m: r[m] for m in METRICS if m in r}}
            for r in history
            if "epoch" in r
        ]

    def close_open_trials(self, status: str, reason: str) -> None:
        """End every child run still open (on Ctrl-C or a driver error)."""
        self.flush()
        for run_id in list(self._children.values()):
            if self.client.get_run(run_id).info.status == RunStatus.RUNNING:
                self.store.end_run(run_id, status, reason)
        self._children.clear()
