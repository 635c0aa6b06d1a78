"""Reads shared for a moment: many clients polling one sweep cost one read of Ray and MLflow a
second, and none of them waits for it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")


class ReadCache(Generic[T]):
    """Values by key, each aged from the moment the read that made it began.

    A value younger than `max_age_s` is served as it is; one up to twice that age is served
    while one read in the background replaces it, so clients that keep polling never wait for
    a read and see a value at most 2 x `max_age_s` old. With no such value the caller reads, and
    callers of the same key meanwhile wait for that one read and get its value or its error.
    Errors are not kept. `max_age_s` 0 reads every time.
    """

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, T]] = {}
        self._reading: dict[str, Future[T]] = {}

    def peek(self, key: str, read: Callable[[], T]) -> T | None:
        """The value to serve now without waiting, or None (then call `get`)."""
        if self.max_age_s <= 0:
            return None
        refresh = None
        with self._lock:
            now = time.monotonic()
            kept = self._values.get(key)
            if kept is None or now - kept[0] >= 2 * self.max_age_s:
                return None
            if now - kept[0] >= self.max_age_s and key not in self._reading:
                refresh = self._reading[key] = Future()
        if refresh is not None:
            threading.Thread(
                target=self._refresh, args=(key, read, refresh, now), name=f"refresh {key}", daemon=True
            ).start()
        return kept[1]

    def get(self, key: str, read: Callable[[], T]) -> T:
        """The value to serve, read now if there is none to serve."""
        if self.max_age_s <= 0:
            return read()
        found = self.peek(key, read)
        if found is not None:
            return found
        with self._lock:
            pending = self._reading.get(key)
            if pending is None:
                mine: Future[T] = Future()
                self._reading[key] = mine
        if pending is not None:
            return pending.result()
        return self._read(key, read, mine, time.monotonic())

    def _refresh(self, key: str, read: Callable[[], T], mine: Future[T], began: float) -> None:
        with contextlib.suppress(Exception):  # its waiters get the error; the next caller reads again
            self._read(key, read, mine, began)

    def _read(self, key: str, read: Callable[[], T], mine: Future[T], began: float) -> T:
        try:
            value = read()
        except BaseException as err:
            with self._lock:
                if self._reading.get(key) is mine:
                    del self._reading[key]
            mine.set_exception(err)
            raise
        with self._lock:
            if self._reading.get(key) is mine:  # else forgotten meanwhile: a write came after it began
                del self._reading[key]
                # Values too old to serve go here, so the dict holds recently read keys only.
                self._values = {k: v for k, v in self._values.items() if began - v[0] < 2 * self.max_age_s}
                self._values[key] = (began, value)
        mine.set_result(value)
        return value

    def forget(self, key: str) -> None:
        """The next read of `key` is fresh: call it after a write that changed the key's value."""
        with self._lock:
            self._values.pop(key, None)
            self._reading.pop(key, None)
