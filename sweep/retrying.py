"""An MLflow client that rides out a tracking-server outage: transient failures are retried."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from sweep.settings import PATIENCE_ENV, Settings

log = logging.getLogger("sweep.tracking")

_MAX_BACKOFF_S = 15.0
_SERVER_ERROR_PATIENCE_S = 30.0

# MLflow's REST errors that say "try again" rather than "this request is wrong".
_TRANSIENT_CODES = {
    "INTERNAL_ERROR",
    "TEMPORARILY_UNAVAILABLE",
    "REQUEST_LIMIT_EXCEEDED",
    "DEADLINE_EXCEEDED",
    "SERVICE_UNDER_MAINTENANCE",
    "IO_ERROR",
}


class TrackingUnavailable(RuntimeError):
    """The tracking store stayed unreachable for longer than the patience allows."""


def is_transient(err: BaseException) -> bool:
    """A connection that failed, timed out or a server-side error: worth another try."""
    return transience(err) is not None


def transience(err: BaseException) -> str | None:
    """ "outage" (no answer, a gateway's 502-504, 429), "server error" (500s, which may be a
    restarting database or a request the server will never take), or None: not worth a retry."""
    import requests
    from mlflow.exceptions import MlflowException, RestException

    if isinstance(err, (ConnectionError, TimeoutError, requests.ConnectionError, requests.Timeout)):
        return "outage"
    if isinstance(err, RestException):
        return "server error" if str(err.error_code) in _TRANSIENT_CODES else None
    if isinstance(err, MlflowException):
        text = str(err)
        if "database is locked" in text:  # SQLite while another driver writes
            return "outage"
        if not text.startswith("API request to"):
            return None
        # MLflow wraps refused connections, resets, timeouts and exhausted retries alike.
        return "server error" if "too many 500 error responses" in text else "outage"
    return None


def call_with_retries(fn: Callable[..., Any], *args: Any, patience: float, **kwargs: Any) -> Any:
    """Call `fn`, retrying transient failures with exponential backoff for up to `patience` s."""
    started = time.monotonic()
    delay = 0.5
    warned = False
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            kind = transience(err)
            if kind is None:
                raise
            # A server that answers 500 for long is more likely refusing this request than
            # restarting: those get a shorter wait than silence does.
            wait = patience if kind == "outage" else min(patience, _SERVER_ERROR_PATIENCE_S)
            left = started + wait - time.monotonic()
            if left <= 0:
                raise TrackingUnavailable(
                    f"the tracking server did not take the request for {wait:.0f} s "
                    f"({PATIENCE_ENV} sets how long to wait for an outage): {err}"
                ) from err
            if not warned:
                log.warning("tracking server unreachable; retrying for up to %.0f s: %s", left, err)
                warned = True
            time.sleep(min(delay, left))
            delay = min(delay * 2, _MAX_BACKOFF_S)


class RetryingClient:
    """Wraps an `MlflowClient`: every method call retries transient failures.

    A request the server received but whose answer was lost may be applied twice; MLflow's own
    writes here are idempotent (tags, params, terminal status) except `create_run`, which only
    runs when a trial starts.
    """

    def __init__(self, client: Any, patience: float | None = None) -> None:
        self._client = client
        self.patience = Settings().tracking_patience_s if patience is None else patience

    @property
    def tracking_uri(self) -> str:
        return str(self._client.tracking_uri)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            return call_with_retries(attr, *args, patience=self.patience, **kwargs)

        return call
