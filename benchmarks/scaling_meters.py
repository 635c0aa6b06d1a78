"""What scaling.py measures with: CPU seconds from /proc (process trees, the machine, work this
benchmark did not start) and the round-trip time of MLflow requests."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar


def _stat(pid: int, reaped: bool = True) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of one process; `reaped` adds its waited-for children's."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces
    ticks = sum(int(f) for f in fields[11 : 15 if reaped else 13])
    return int(fields[1]), ticks / os.sysconf("SC_CLK_TCK")


def _all_stats(reaped: bool) -> dict[int, tuple[int, float]]:
    stats = {}
    for entry in Path("/proc").glob("[0-9]*"):
        found = _stat(int(entry.name), reaped)
        if found:
            stats[int(entry.name)] = found
    return stats


def _descendants(root: int, stats: dict[int, tuple[int, float]]) -> set[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _) in stats.items():
        children[ppid].append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in stats and pid not in found:
            found.add(pid)
            todo += children[pid]
    return found


class OtherWork(threading.Thread):
    """CPU seconds of processes outside this process's tree, sampled every `interval_s`.

    Sampled, not read once at the end: Ray's raylet reaps its workers without accounting their
    CPU to itself, so a finished worker's time would vanish from the tree's totals. A process
    that ends loses at most its last interval.
    """

    def __init__(self, interval_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.other_s = 0.0
        self.mine_s = 0.0
        self._last = {pid: cpu for pid, (_, cpu) in _all_stats(reaped=False).items()}
        self._done = threading.Event()

    def _tick(self) -> None:
        stats = _all_stats(reaped=False)
        mine = _descendants(os.getpid(), stats)
        for pid, (_, cpu) in stats.items():
            delta = cpu - self._last.get(pid, 0.0)
            self._last[pid] = cpu
            if pid in mine:
                self.mine_s += delta
            else:
                self.other_s += delta

    def run(self) -> None:
        while not self._done.wait(self.interval_s):
            self._tick()

    def stop(self) -> None:
        self._done.set()
        self.join()
        self._tick()


def tree_cpu_s(root: int, marker: str = "") -> tuple[float, float]:
    """CPU seconds of `root` and every descendant alive now (dead ones count in their parent).

    Returns (all of them, those whose command line holds `marker`).
    """
    stats = _all_stats(reaped=True)
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _) in stats.items():
        children[ppid].append(pid)
    total, marked, todo = 0.0, 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
            if marker:
                try:
                    if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                        marked += stats[pid][1]
                except OSError:
                    pass
            todo += children[pid]
    return total, marked


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class CpuMeter:
    """CPU used between start() and stop(): this process, the servers' trees, the whole machine.

    `mlflow server` runs its requests in a uvicorn process and keeps a job runner and huey
    consumers beside it: `mlflow_cpu_s` is the uvicorn process's, `mlflow_tree_cpu_s` all of them.
    """

    MARKERS: ClassVar[dict[str, str]] = {"mlflow": "uvicorn"}

    def __init__(self, server_pids: dict[str, int]) -> None:
        self.server_pids = server_pids
        self._start: dict[str, Any] = {}

    def _sample(self) -> dict[str, Any]:
        return {
            "wall": time.monotonic(),
            "driver": time.process_time(),
            "machine": machine_ticks(),
            **{name: tree_cpu_s(pid, self.MARKERS.get(name, "")) for name, pid in self.server_pids.items()},
        }

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> dict[str, float]:
        end, begin = self._sample(), self._start
        wall = end["wall"] - begin["wall"]
        busy = end["machine"][0] - begin["machine"][0]
        total = end["machine"][1] - begin["machine"][1]
        cores = len(os.sched_getaffinity(0))
        out = {
            "driver_cpu_s": end["driver"] - begin["driver"],
            "machine_busy_frac": busy / total if total else 0.0,  # of all cores
            "machine_busy_core_s": busy / total * wall * cores if total else 0.0,
        }
        for name in self.server_pids:
            tree = end[name][0] - begin[name][0]
            if name in self.MARKERS:
                out[f"{name}_tree_cpu_s"] = tree
                out[f"{name}_cpu_s"] = end[name][1] - begin[name][1]
            else:
                out[f"{name}_cpu_s"] = tree
        return out


class TimedClient:
    """Wraps the tracker's MLflow client: the round-trip time of every request, by method."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: dict[str, list[float]] = defaultdict(list)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self.calls[name].append(time.perf_counter() - started)

        return call

    def summary(self) -> dict[str, dict[str, float]]:
        return {name: latency_stats(times) for name, times in sorted(self.calls.items())}


def latency_stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "n": len(ordered),
        "total_s": sum(ordered),
        "mean_ms": 1000 * statistics.fmean(ordered) if ordered else 0.0,
        "median_ms": 1000 * statistics.median(ordered) if ordered else 0.0,
        "p90_ms": 1000 * ordered[int(0.9 * (len(ordered) - 1))] if ordered else 0.0,
    }
