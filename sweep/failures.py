"""Why a trial failed, and which failures Tune may retry: lost infrastructure yes, divergence no.

Ray Tune's `FailureConfig(max_failures=N)` retries every failure alike. A diverged trial (or any
error the trial's own code raised) fails the same way each time its seed runs, so a retry only
burns time; a worker or node that died is worth another attempt. Tune has no hook for this, so
`install_retry_policy` wraps two methods of its `Trial` in the driver process (Ray pinned to 2.60;
tests/unit/test_failures.py checks the methods still exist with the signatures used here).
"""

from __future__ import annotations

import json
import re
from typing import Any

INFRASTRUCTURE = "infrastructure"  # the worker, its node or the object store went away: retried
DIVERGED = "diverged"  # the loss stopped being finite: final
ERROR = "error"  # the trial's code raised: final (it would raise again)
KINDS = (INFRASTRUCTURE, DIVERGED, ERROR)

NODE_NOTE = "sweep.node: "  # the prefix of the note a failing trial adds to its exception


class TrialDiverged(RuntimeError):
    """The loss stopped being a finite number."""


def failure_kind(exc: BaseException | None) -> str:
    """Classify an exception Tune got from a trial."""
    from ray.exceptions import (
        NodeDiedError,
        ObjectLostError,
        OutOfMemoryError,
        RayActorError,
        RaySystemError,
        RayTaskError,
        WorkerCrashedError,
    )

    lost = (
        RayActorError,
        NodeDiedError,
        WorkerCrashedError,
        ObjectLostError,
        OutOfMemoryError,
        RaySystemError,
    )
    if isinstance(exc, RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, lost):
            return INFRASTRUCTURE
        if isinstance(cause, TrialDiverged) or _named(exc, "TrialDiverged"):
            return DIVERGED
        return ERROR
    if isinstance(exc, lost):
        return INFRASTRUCTURE
    return ERROR


def _named(exc: BaseException, name: str) -> bool:
    return f"{name}:" in str(exc)


def install_retry_policy() -> None:
    """Let Tune retry a trial only when its failure was lost infrastructure (idempotent)."""
    from ray.tune.experiment.trial import Trial

    if getattr(Trial, "_sweep_retry_policy", False):
        return
    handle_error = Trial.handle_error
    should_recover = Trial.should_recover

    def handle_error_and_classify(self: Any, exc: Any = None) -> None:
        self.sweep_failure = failure_kind(exc)
        handle_error(self, exc)

    def recover_only_lost_infrastructure(self: Any) -> bool:
        return getattr(self, "sweep_failure", INFRASTRUCTURE) == INFRASTRUCTURE and should_recover(self)

    Trial.handle_error = handle_error_and_classify  # type: ignore[method-assign]
    Trial.should_recover = recover_only_lost_infrastructure  # type: ignore[method-assign]
    Trial._sweep_retry_policy = True  # type: ignore[attr-defined]


def last_failure(error_file_text: str | None) -> str | None:
    """Tune appends one `Failure # N` section per attempt to a trial's error file: the last one."""
    if not error_file_text:
        return None
    sections = re.split(r"(?m)^Failure # \d+ \(occurred at [^)]*\)\n", error_file_text)
    tail = sections[-1].strip()
    return tail or None


def node_from_trace(trace: str | None) -> dict[str, str]:
    """The node facts a failing trial noted on its exception (see `sweep.trainable`)."""
    if not trace:
        return {}
    found = {}
    for match in re.finditer(re.escape(NODE_NOTE) + r"(\{.*?\})", trace):
        try:
            found = json.loads(match.group(1))
        except ValueError:
            continue
    return {k: str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def actor_in_trace(trace: str | None) -> str | None:
    """The id of the Ray actor a lost-worker error names ("The actor <id> is unavailable",
    "actor_id: <id>")."""
    found = re.search(r"(?:The actor |actor_id: )([0-9a-f]{32})\b", trace or "")
    return found.group(1) if found else None


def node_of_actor(actor_id: str | None) -> dict[str, str]:
    """Where Ray placed an actor, dead ones included, from the GCS's actor table (driver side).

    A trial lost before its first epoch reported nothing, and an "actor unavailable" error names
    no node: the actor table still does. Best effort: {} when Ray cannot say.
    """
    if not actor_id:
        return {}
    try:
        from ray._private.state import actors  # the GCS actor table; no dashboard needed

        info = actors(actor_id)
    except Exception:  # a missing fact, not a reason to lose the retry
        return {}
    address = info.get("Address") or {}
    found = {"node_id": address.get("NodeID"), "node_ip": address.get("IPAddress"), "pid": info.get("Pid")}
    return {k: str(v) for k, v in found.items() if v}


def forget_unusable_checkpoint(trial: Any) -> str | None:
    """Before Tune retries `trial`: drop its latest checkpoint if that is gone or incomplete.

    Tune restores a retry from the trial's latest checkpoint and fails the trial for good (a
    ValueError in its restore) when that folder no longer exists; forgotten, the retry starts over
    instead, and the reason returned is recorded (`trial.attempt_N.checkpoint_error`). A folder
    whose record is fine but whose arrays are not is the worker's to refuse (sweep.trainable).
    Reaches into Tune's checkpoint manager (Ray pinned to 2.60; tests/unit/test_failures.py).
    """
    from sweep.training.checkpoints import CheckpointError, read_meta

    checkpoint = trial.checkpoint
    if checkpoint is None:
        return None
    try:
        read_meta(checkpoint.path)
    except CheckpointError as err:
        trial.run_metadata.checkpoint_manager._latest_checkpoint_result = None
        return str(err)
    return None


def one_line_error(text: str | None) -> str:
    """The last `SomethingError: message` line of a traceback."""
    if not text:
        return "unknown error"
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for line in reversed(lines):
        if re.match(r"^[\w.]*(Error|Exception|Diverged|Interrupt)\b.*:", line):
            return line[:500]
    return lines[-1][:500] if lines else "unknown error"


def short_error(err: BaseException, limit: int = 500) -> str:
    """`Type: first line of the message`, at most `limit` characters: an error in one line."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"[:limit]
