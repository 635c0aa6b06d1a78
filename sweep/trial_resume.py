"""A trial an earlier driver left unfinished, with a checkpoint to continue from (`sweep resume`).

The driver that resumes a sweep keeps such a trial's MLflow run (same run, same tags) and hands
its checkpoint to the trial's new Tune run through the resume index (`sweep.trial_checkpoints`).
A trial without one runs again from the start, in a new run, as before checkpoints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, RunTag

from sweep.store.layout import ATTEMPTS, ERROR, FAILURE, METRICS, NODE_TAGS, TRIAL_ID, attempt_tag
from sweep.store.records import TrialRecord
from sweep.training.checkpoints import CheckpointError, read_meta
from sweep.trial import RunStatus
from sweep.trial_checkpoints import checkpoint_name, newest, read_index, trial_checkpoints

DRIVER_LOST = "the sweep's driver stopped before this attempt ended"
_BATCH = 900  # MLflow accepts at most 1000 metrics per log_batch


@dataclass(frozen=True)
class Resumable:
    """An unfinished trial's run and the checkpoint its next attempt continues from."""

    run_id: str
    name: str  # the trial's checkpoint_name
    attempts: int  # the attempts it had so far
    checkpoint: Path
    history: list[dict[str, Any]]  # the epochs the checkpoint had done, as it recorded them
    tags: dict[str, str] = field(repr=False)

    @property
    def epoch(self) -> int:
        """The epochs the checkpoint had done (0 when its record is unreadable)."""
        return max((int(row.get("epoch", 0)) for row in self.history), default=0)

    def unwritten_epochs(self, after: int) -> list[Metric]:
        """The checkpoint's per-epoch metrics after epoch `after` (what MLflow holds), to write."""
        now = int(time.time() * 1000)
        return [
            Metric(m, float(row[m]), now, int(row["epoch"]))
            for row in self.history
            if int(row.get("epoch", 0)) > after
            for m in METRICS
            if m in row
        ]

    def lost_attempt_tags(self, attempt: int) -> dict[str, str]:
        """What the attempt the driver lost died of, and where, as a retry records it."""
        # A run the driver's Ctrl-C closed says so; one a killed driver left RUNNING says nothing.
        tags = {attempt_tag(attempt, "error"): (self.tags.get(ERROR) or DRIVER_LOST)[:5000]}
        node = self.tags.get(NODE_TAGS["node_id"])
        if node:
            tags[attempt_tag(attempt, "node_id")] = node
        return tags


def resumable_trial(trial: TrialRecord, sweep_dir: Path | None) -> Resumable | None:
    """The trial's newest checkpoint (its own Tune trial's, or the one an earlier resume took), or None."""
    if sweep_dir is None or trial.config is None:
        return None
    candidates = trial_checkpoints(sweep_dir, trial.trial_id or "")
    earlier = read_index(sweep_dir).get(checkpoint_name(trial.config))
    if earlier:
        candidates.append(Path(earlier))
    found = newest(candidates)
    if found is None:
        return None
    try:
        history = read_meta(found).get("history") or []
    except CheckpointError:
        history = []  # the trial's restore fails with the reason and starts over in this run
    return Resumable(
        trial.run_id, checkpoint_name(trial.config), trial.attempts, found, list(history), dict(trial.tags)
    )


def reopen_run(client: Any, store: Any, resumed: Resumable, trial_id: str) -> tuple[int, int]:
    """Reopen a resumed trial's run for its next attempt (Tune's new `trial_id`): the attempt's
    number, and the last epoch the run now holds (later epochs are the new attempt's to write)."""
    attempts = resumed.attempts + 1
    tags = {ATTEMPTS: str(attempts), TRIAL_ID: trial_id} | resumed.lost_attempt_tags(attempts - 1)
    last = max(store.metric_history(resumed.run_id, ("val_accuracy",)), default=0)
    missing = resumed.unwritten_epochs(after=last)  # the lost driver's writes were batched
    client.update_run(resumed.run_id, status=RunStatus.RUNNING)
    for stale in (ERROR, FAILURE):  # the error is kept as the lost attempt's
        if stale in resumed.tags:
            client.delete_tag(resumed.run_id, stale)
    for i in range(0, max(len(missing), 1), _BATCH):
        batch_tags = [RunTag(k, v) for k, v in tags.items()] if i == 0 else []
        client.log_batch(resumed.run_id, metrics=missing[i : i + _BATCH], tags=batch_tags)
    return attempts, max(last, resumed.epoch)
