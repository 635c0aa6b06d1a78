"""The service's side of the queue of sweeps (issue 23; Ray Jobs holds the queue itself, see
sweep.admission): a burst of submits takes turns, a full queue refuses new sweeps, and queued
sweeps a restarted Ray head forgot are submitted again from their parent runs.

Ray keeps its queue of PENDING jobs in the head's GCS, which a restart without GCS fault
tolerance loses. Each queued sweep's parent run (SCHEDULED, state `queued`, sweep.admission) holds
its spec and its job's metadata, so the service submits it again under the same submission id:
the same sweep, with the same Idempotency-Key, and no second driver if an earlier try landed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from services.api.problems import TooMany, Unavailable
from sweep import jobs
from sweep.jobs import JobError
from sweep.spec import SpecError, parse_spec, parse_spec_text
from sweep.store import SweepRecord, SweepStore

log = logging.getLogger("sweep.api")
# What a refused submit is told to wait: about the time a quick sweep takes to free a slot.
RETRY_AFTER_S = 60
SUBMIT_RETRY_AFTER_S = 10  # a POST that found no turn to submit: the burst ahead is being staged


class Turns:
    """At most `n` submits staged at once (each writes its queued parent run to MLflow and uploads
    its Ray job); a burst beyond waits its turn in the event loop, holding no worker thread and not
    exhausting MLflow's connection pool, and one that waited `wait_s` is refused (503 with
    Retry-After) before anything is written."""

    def __init__(self, n: int, wait_s: float) -> None:
        self.n, self.wait_s = n, wait_s
        self._free: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        if self._free is None or self._loop is not loop:  # one per serving loop
            self._free, self._loop = asyncio.Semaphore(self.n), loop
        free = self._free
        try:
            await asyncio.wait_for(free.acquire(), self.wait_s)
        except TimeoutError:
            raise Unavailable(
                f"{self.wait_s:g} s without a turn to submit: other submits are being staged; "
                "try again (with the same Idempotency-Key)",
                headers={"Retry-After": str(SUBMIT_RETRY_AFTER_S)},
            ) from None
        try:
            yield
        finally:
            free.release()


def check_room(queued: int, limit: int | None) -> None:
    """Refuse a new sweep (429, with Retry-After) while `limit` sweeps are queued already."""
    if limit is not None and queued >= limit:
        raise TooMany(
            f"{queued} sweeps are queued already (SWEEP_MAX_QUEUED_SWEEPS={limit}): "
            "submit again once some have started",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )


def resubmit(
    store: SweepStore, record: SweepRecord, *, address: str, tracking_uri: str, runs_dir: str | None
) -> str | None:
    """Submit a queued sweep whose job is gone again; None when it went, else why it could not."""
    text = store.spec_yaml(record.parent_run_id)
    if not text:
        return "its spec.yaml cannot be read from its parent run"
    tags: dict[str, Any] = store.client.get_run(record.parent_run_id).data.tags
    # The submit's own metadata (spec and Idempotency-Key hashes), as the parent run recorded it.
    metadata = {k: v for k, v in tags.items() if k.startswith("sweep.") and k.endswith("_sha256")}
    source = f"{record.sweep_id} (spec.yaml in MLflow)"
    try:
        spec = parse_spec(parse_spec_text(text, source=source), source)
        jobs.submit_spec(
            spec,
            address=address,
            sweep_id=record.sweep_id,
            tracking_uri=tracking_uri,
            runs_dir=runs_dir,
            metadata=metadata,
        )
    except SpecError as err:
        return "; ".join(err.errors)
    except JobError as err:
        return str(err)
    log.warning("sweep %s was queued on a head that forgot it: submitted again", record.sweep_id)
    return None
