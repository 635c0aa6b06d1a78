"""ReadCache: many readers of one key share one read for a moment; writes make the next read fresh."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.api.cache import ReadCache


class Source:
    """A read that counts its calls and can be held open until released."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()
        self.release.set()
        self.fail: Exception | None = None

    def read(self) -> int:
        self.calls += 1
        self.release.wait(5)
        if self.fail:
            raise self.fail
        return self.calls


def test_a_value_is_served_as_it_is_until_it_is_max_age_old() -> None:
    cache, source = ReadCache[int](0.5), Source()
    assert cache.peek("a", source.read) is None  # nothing read yet: the caller must `get`
    assert [cache.get("a", source.read) for _ in range(3)] == [1, 1, 1]
    assert cache.peek("a", source.read) == 1
    assert cache.get("b", source.read) == 2  # keys apart
    assert source.calls == 2


def test_an_older_value_is_served_while_one_background_read_replaces_it() -> None:
    cache, source = ReadCache[int](0.2), Source()
    assert cache.get("a", source.read) == 1
    time.sleep(0.25)
    source.release.clear()
    assert [cache.get("a", source.read) for _ in range(5)] == [1] * 5  # no caller waits
    source.release.set()
    time.sleep(0.1)
    assert source.calls == 2 and cache.get("a", source.read) == 2


def test_a_value_twice_max_age_old_is_read_again_by_the_caller() -> None:
    cache, source = ReadCache[int](0.1), Source()
    assert cache.get("a", source.read) == 1
    time.sleep(0.25)
    assert cache.peek("a", source.read) is None
    assert cache.get("a", source.read) == 2


def test_a_failed_background_read_keeps_nothing_and_the_caller_gets_the_error() -> None:
    cache, source = ReadCache[int](0.1), Source()
    assert cache.get("a", source.read) == 1
    time.sleep(0.15)
    source.fail = LookupError("gone")
    assert cache.get("a", source.read) == 1  # served; its refresh fails in the background
    time.sleep(0.15)
    with pytest.raises(LookupError, match="gone"):
        cache.get("a", source.read)


def test_zero_max_age_reads_every_time() -> None:
    cache, source = ReadCache[int](0), Source()
    assert [cache.get("a", source.read) for _ in range(3)] == [1, 2, 3]


def test_concurrent_readers_of_one_key_share_one_read() -> None:
    cache, source = ReadCache[int](10), Source()
    source.release.clear()
    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(cache.get, "a", source.read) for _ in range(20)]
        time.sleep(0.2)  # every reader is waiting on the one read
        source.release.set()
        assert [f.result() for f in futures] == [1] * 20
    assert source.calls == 1


def test_an_error_reaches_every_waiting_reader_and_is_not_kept() -> None:
    cache, source = ReadCache[int](10), Source()
    source.release.clear()
    source.fail = LookupError("gone")
    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(cache.get, "a", source.read) for _ in range(5)]
        time.sleep(0.2)
        source.release.set()
        for future in futures:
            with pytest.raises(LookupError, match="gone"):
                future.result()
    source.fail = None
    assert cache.get("a", source.read) == 2 and source.calls == 2


def test_forget_makes_the_next_read_fresh_even_during_an_older_read() -> None:
    cache, source = ReadCache[int](10), Source()
    assert cache.get("a", source.read) == 1
    cache.forget("a")
    assert cache.get("a", source.read) == 2
    # A read that began before a write must not be kept after it.
    cache.forget("a")
    source.release.clear()
    with ThreadPoolExecutor(1) as pool:
        older = pool.submit(cache.get, "a", source.read)
        time.sleep(0.1)
        cache.forget("a")
        source.release.set()
        assert older.result() == 3
    assert cache.get("a", source.read) == 4
