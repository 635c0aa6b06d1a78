"""A bounded load on the REST service: a fixed number of requests from concurrent clients.

Each client runs its share of a fixed request list (submits with Idempotency-Keys, status polls,
lists, reports, trials) with httpx's async client and stops when the list is done: the run ends
by itself. Used by tests/integration/test_api_service.py (small) and benchmarks/load.py (larger).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class LoadResult:
    """What the load did: per endpoint, every status and latency; the sweeps the submits made."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    sweeps: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # key -> ids
    errors: list[str] = field(default_factory=list)  # transport errors, 5xx, tracebacks
    wall_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"wall_s": round(self.wall_s, 2), "errors": len(self.errors), "endpoints": {}}
        for name, values in sorted(self.latencies.items()):
            ordered = sorted(values)
            out["endpoints"][name] = {
                "requests": len(values),
                "statuses": dict(self.statuses[name]),
                "p50_ms": round(statistics.median(ordered) * 1000, 1),
                "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
                "max_ms": round(ordered[-1] * 1000, 1),
            }
        return out


def plan(keys: list[str], resends: int, polls: int, lists: int, seed: int = 0) -> list[tuple[str, str]]:
    """The request list, shuffled: (kind, key) pairs; every key submitted `resends` times."""
    requests = [("submit", k) for k in keys for _ in range(resends)]
    requests += [("status", keys[i % len(keys)]) for i in range(polls)]
    requests += [("list", "")] * lists
    requests += [("trials", keys[i % len(keys)]) for i in range(polls // 4)]
    requests += [("report", keys[i % len(keys)]) for i in range(polls // 4)]
    random.Random(seed).shuffle(requests)
    return requests


async def _one(api: httpx.AsyncClient, kind: str, key: str, spec: dict[str, Any], result: LoadResult) -> None:
    ids = sorted(result.sweeps.get(key, ()))
    sweep_id = ids[0] if ids else "not-yet-submitted"
    started = time.perf_counter()
    try:
        if kind == "submit":
            response = await api.post("/v1/sweeps", json=spec, headers={"Idempotency-Key": key})
        elif kind == "status":
            response = await api.get(f"/v1/sweeps/{sweep_id}")
        elif kind == "list":
            response = await api.get("/v1/sweeps", params={"limit": 20})
        else:
            response = await api.get(f"/v1/sweeps/{sweep_id}/{kind}")
    except httpx.HTTPError as err:
        result.errors.append(f"{kind}: {type(err).__name__}: {err}")
        return
    result.latencies[kind].append(time.perf_counter() - started)
    result.statuses[kind][response.status_code] += 1
    if response.status_code >= 500 or "Traceback" in response.text:
        result.errors.append(f"{kind} {response.status_code}: {response.text[:300]}")
    if kind == "submit" and response.status_code in (200, 202):
        result.sweeps[key].add(response.json()["id"])


async def _run(
    base_url: str, token: str | None, spec: dict[str, Any], requests: list[tuple[str, str]], clients: int
) -> LoadResult:
    result = LoadResult()
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120) as api:
            while not queue.empty():
                kind, key = queue.get_nowait()
                await _one(api, kind, key, spec, result)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    result.wall_s = time.perf_counter() - started
    return result


def run_load(
    base_url: str, token: str | None, spec: dict[str, Any], requests: list[tuple[str, str]], clients: int
) -> LoadResult:
    """Send `requests` from `clients` concurrent clients; returns when every one is answered."""
    return asyncio.run(_run(base_url, token, spec, requests, clients))
