"""Load on the REST service on loopback: a bounded request load (issue 16), or a burst of sweeps
(issue 23).

Starts the stack the integration tests use (an `mlflow server` on SQLite, a one-node Ray head with
token auth, `sweep serve`), sends a fixed list of requests from concurrent clients
(tests/integration/api_load.py) and prints, per endpoint, requests, statuses and p50/p99/max
latency, the errors (must be 0) and the sweeps launched against the distinct Idempotency-Keys sent.
The run ends by itself. Usage:

    .venv/bin/python benchmarks/load.py [--clients 20] [--keys 10] [--resends 10] [--polls 1500]

With `--burst N --slots K` it instead starts `sweep serve` as a user does (its own Ray head, a
local MLflow store) with K sweep slots (SWEEP_MAX_RUNNING_SWEEPS), POSTs N examples/quick.yaml
sweeps at once, and waits for all of them: whether all SUCCEEDED, the time from the burst to the
first and the last result, the peak memory in use on the machine (`free`'s used) and the peak RSS
of the service's process tree (the head, its drivers and workers), each sampled every second.

    .venv/bin/python benchmarks/load.py --burst 6 --slots 2

Past `--stop-above-gb` of memory in use on the machine (default 20 of this machine's 24) the run
kills the service's whole process tree at once and reports how far it got: this is what `--slots N`
(today's all-at-once behaviour) meets at a large N, and the machine must survive measuring it.

Figures: docs/reliability.md, docs/api.md#queue. The JSON lands in
benchmarks/results/load-<time>.json (burst-<time>.json for a burst).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from api_load import plan, run_load  # noqa: E402
from api_server import TOKEN, ApiServer, serve_env, until_ended, write_data  # noqa: E402
from cluster import MlflowServer, RayCluster  # noqa: E402

ENDED = ("SUCCEEDED", "FAILED", "CANCELLED")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--keys", type=int, default=10, help="distinct Idempotency-Keys (sweeps launched)")
    parser.add_argument("--resends", type=int, default=10, help="times each key is submitted")
    parser.add_argument(
        "--polls", type=int, default=1500, help="status polls (plus a quarter each of trials, reports)"
    )
    parser.add_argument("--lists", type=int, default=200)
    parser.add_argument("--burst", type=int, help="POST this many quick sweeps at once instead")
    parser.add_argument("--slots", type=int, default=2, help="--burst: SWEEP_MAX_RUNNING_SWEEPS")
    parser.add_argument("--cpus", type=int, default=os.cpu_count(), help="--burst: the head's CPUs")
    parser.add_argument("--timeout", type=float, default=6 * 3600, help="--burst: give up after (s)")
    parser.add_argument(
        "--stop-above-gb", type=float, default=20.0, help="--burst: kill it all past this much memory in use"
    )
    args = parser.parse_args()
    if args.burst:
        summary = burst(args.burst, args.slots, args.cpus, args.timeout, args.stop_above_gb)
        write(summary, "burst")
        return

    spec = {
        "name": "load",
        "dataset": {"source": "csv", "path": "sets/train.csv", "target": "y"},
        "model": {"hidden_units": [8]},
        "search": {"placement": ["none"], "dropout": [0.0], "optimizer": [{"name": "adam"}], "seeds": 1},
        "training": {"epochs": 1, "batch_size": 32},
        "tracking": {"experiment": "load"},
    }
    with tempfile.TemporaryDirectory(prefix="sweep-load-") as tmp:
        root = Path(tmp)
        write_data(root / "data" / "sets")
        with (
            MlflowServer(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts") as tracking,
            RayCluster(root / "cluster", nodes=1, cpus_per_node=2) as cluster,
        ):
            env = serve_env(cluster, tracking.url, root / "data", SWEEP_RUNS_DIR=str(root / "runs"))
            with ApiServer(root / "serve", env) as service:
                keys = [f"load-{i}" for i in range(args.keys)]
                requests = plan(keys, args.resends, args.polls, args.lists)
                result = run_load(service.url, TOKEN, spec, requests, args.clients)
                summary = result.summary()
                summary |= {
                    "clients": args.clients,
                    "requests": len(requests),
                    "keys_sent": len(keys),
                    "sweeps_launched": len({i for ids in result.sweeps.values() for i in ids}),
                    "first_errors": result.errors[:5],
                    "cpus": os.cpu_count(),
                    "load_average_after": os.getloadavg(),
                }
                with service.client() as api:
                    for ids in result.sweeps.values():
                        for sweep_id in ids:
                            api.post(f"/v1/sweeps/{sweep_id}/cancel")
                            until_ended(api, sweep_id, timeout=600)
    write(summary, "load")


def write(summary: dict[str, Any], kind: str) -> None:
    print(json.dumps(summary, indent=2))
    out = ROOT / "benchmarks" / "results" / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")


def burst(n: int, slots: int, cpus: int, timeout: float, stop_above_gb: float) -> dict[str, Any]:
    """N quick sweeps POSTed at once to a `sweep serve` with `slots` sweep slots, followed to the end."""
    import yaml

    spec = yaml.safe_load((ROOT / "examples" / "quick.yaml").read_text())
    with tempfile.TemporaryDirectory(prefix="sweep-burst-") as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SWEEP_", "RAY_", "MLFLOW_TRACKING"))}
        env |= {
            "SWEEP_RUNS_DIR": str(root / "runs"),
            "SWEEP_RAY_CPUS": str(cpus),
            "SWEEP_API_TOKEN": TOKEN,
            "SWEEP_MAX_RUNNING_SWEEPS": str(slots),
        }
        # A burst's POSTs wait on each other (each stages a job with Ray): measured, not cut off.
        with ApiServer(root / "serve", env) as service, service.client(timeout=1800) as api:
            meter = Meter(service, stop_above_mb=stop_above_gb * 1024)
            meter.start()
            started = time.monotonic()

            retries = []

            def post(i: int) -> tuple[httpx.Response, float]:
                """As a careful client posts: one Idempotency-Key, Retry-After honoured (5 tries)."""
                body, key = {**spec, "name": f"burst-{i}"}, {"Idempotency-Key": f"b{i}"}
                sent = time.monotonic()
                for _ in range(5):
                    response = api.post("/v1/sweeps", json=body, headers=key)
                    if response.status_code not in (429, 503) or "retry-after" not in response.headers:
                        break
                    retries.append(response.status_code)
                    time.sleep(float(response.headers["retry-after"]))
                return response, time.monotonic() - sent

            with ThreadPoolExecutor(max_workers=min(n, 32)) as pool:
                posts, waits = zip(*pool.map(post, range(n)), strict=True)
            all_posted_s = time.monotonic() - started
            refused = [p.text for p in posts if p.status_code != 202]
            ids = [p.json()["id"] for p in posts if p.status_code == 202]
            ended: dict[str, tuple[str, float]] = {}
            peak_queued = 0
            peak_running = 0
            while len(ended) < len(ids) and time.monotonic() - started < timeout and not meter.stopped_at_s:
                # One list call a pass (not a GET per sweep): the service's load stays the sweeps'.
                listed = api.get("/v1/sweeps", params={"limit": 200}).json()["items"]
                for item in listed:
                    if item["id"] in ids and item["id"] not in ended and item["status"] in ENDED:
                        ended[item["id"]] = (item["status"], time.monotonic() - started)
                counts = api.get("/readyz").json().get("sweeps") or {}
                peak_queued = max(peak_queued, counts.get("queued", 0))
                peak_running = max(peak_running, counts.get("running", 0))
                time.sleep(5)
            meter.stop()
    times = sorted(t for _, t in ended.values())
    return {
        "burst": n,
        "slots": slots,
        "head_cpus": cpus,
        "all_succeeded": len(ended) == n and all(s == "SUCCEEDED" for s, _ in ended.values()),
        "statuses": sorted(s for s, _ in ended.values()),
        "refused": refused[:5],
        "post_s": {"median": round(statistics.median(waits), 2), "max": round(max(waits), 2)},
        "all_posted_s": round(all_posted_s, 1),
        "post_retries": sorted(retries),
        "first_result_s": round(times[0], 1) if times else None,
        "last_result_s": round(times[-1], 1) if len(times) == n else None,
        "peak_queued": peak_queued,
        "peak_running": peak_running,
        "ended": len(ended),
        "killed_for_memory_after_s": meter.stopped_at_s,
        "stop_above_mb": meter.stop_above_mb,
        "used_memory_before_mb": meter.before_mb,
        "peak_used_memory_mb": meter.peak_used_mb,
        "peak_service_rss_mb": meter.peak_rss_mb,
        "cpus": os.cpu_count(),
        "load_average_after": os.getloadavg(),
    }


class Meter(threading.Thread):
    """Every second: the machine's used memory (`free`), and the RSS of the service's process tree;
    past `stop_above_mb` in use, SIGKILL to that whole tree (and `stopped_at_s` set)."""

    def __init__(self, service: ApiServer, stop_above_mb: float):
        super().__init__(daemon=True)
        self.root = service._proc.pid if service._proc else 0
        self.before_mb = _used_mb()
        self.peak_used_mb = self.before_mb
        self.peak_rss_mb = 0.0
        self.stop_above_mb = stop_above_mb
        self.stopped_at_s: float | None = None
        self._t0 = time.monotonic()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(1.0):
            used = _used_mb()
            self.peak_used_mb = max(self.peak_used_mb, used)
            tree = _tree(self.root)
            self.peak_rss_mb = max(self.peak_rss_mb, _rss_mb(tree))
            if used > self.stop_above_mb and self.stopped_at_s is None:
                for proc in tree:
                    with contextlib.suppress(OSError, ValueError):
                        os.kill(int(proc.name), signal.SIGKILL)
                self.stopped_at_s = round(time.monotonic() - self._t0, 1)

    def stop(self) -> None:
        self._done.set()
        self.join()


def _used_mb() -> float:
    """Used memory as `free` counts it: total - available."""
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    kb = int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])
    return round(kb / 1024, 1)


def _tree(root: int) -> list[Path]:
    """`root`'s session and every process carrying the mark of the Ray head it started (Ray's
    workers leave the head's process group, not its environment)."""
    marks = {_mark(p) for p in _children(root)} - {None}
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ProcessLookupError):
            if os.getsid(int(proc.name)) == root or _mark(proc) in marks:
                found.append(proc)
    return found


def _rss_mb(procs: list[Path]) -> float:
    total_kb = 0
    for proc in procs:
        with contextlib.suppress(OSError):
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return round(total_kb / 1024, 1)


def _children(pid: int) -> list[Path]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(proc)
        except (OSError, ValueError, IndexError):
            continue
    return found


def _mark(proc: Path) -> bytes | None:
    """The SWEEP_SERVE_RAY_HEAD entry of a process's environment (services/api/ray_head.py)."""
    try:
        entries = (proc / "environ").read_bytes().split(b"\0")
    except OSError:
        return None
    return next((e for e in entries if e.startswith(b"SWEEP_SERVE_RAY_HEAD=")), None)


if __name__ == "__main__":
    main()
