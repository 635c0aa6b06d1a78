"""The REST service: how soon a POSTed sweep trains, and how fast GET /v1/sweeps/{id} answers.

Real parts only: PostgreSQL and `mlflow server` on it (1 worker), a token-auth Ray cluster
(tests/integration/cluster.py: one node with 2 CPUs by default) and `sweep serve` on loopback
(the integration tests' ApiServer), all started here and stopped at the end.

  latency  From `POST /v1/sweeps` to the first trial's MLflow run RUNNING (its start_time), on a
           warm service; the first POST after the service started is reported apart as "cold".
           Each sweep is broken down by timestamps read from Ray (the job's start_time), /proc
           (the start of the driver process and of the job's first Ray worker) and MLflow (the
           parent run's and the first trial run's start_time). Each sweep runs to its end
           before the next POST, so every POST meets an idle service.
  load     GET /v1/sweeps/{id} from N concurrent clients (async httpx, one connection each) while
           a sweep trains: a fixed number of requests, latency percentiles and errors; one client
           alone first (the cost of one request), then N clients polling every --every-s, then N
           clients back to back (as many requests as the service answers).
  floor    The polling of `load` against the same app with an in-memory sweep (nothing to read),
           alone and beside 2 busy-looping processes (standing in for 2 training trials): what
           the machine allows any Python service here.

Usage:
  .venv/bin/python benchmarks/api.py                      # both (~6 min on 2 cores)
  .venv/bin/python benchmarks/api.py --reps 2 --requests 400   # smaller
  .venv/bin/python benchmarks/api.py --status-cache-s 0,1   # load without, then with, the status cache
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import h11  # the protocol library under httpx: LightClient
import httpx
from bench import RESULTS_DIR, ROOT, machine_info
from scaling_meters import OtherWork, machine_ticks

sys.path.insert(0, str(ROOT / "tests" / "integration"))  # the cluster harness and API test helpers

GOAL_FIRST_TRIAL_S = 10.0
GOAL_P99_MS = 100.0
EXPERIMENT = "api-bench"
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


def spec(name: str, epochs: int, samples: int) -> dict[str, Any]:
    """2 placements x 1 dropout x 1 seed on synthetic data: 2 trials, one per core."""
    return {
        "name": name,
        "dataset": {"source": "synthetic", "n_samples": samples, "n_features": 10, "n_classes": 2},
        "model": {"hidden_units": [16]},
        "search": {"placement": ["before_activation", "none"], "dropout": [0.1], "seeds": 1},
        "training": {"epochs": epochs, "batch_size": 32},
        "tracking": {"experiment": EXPERIMENT},
    }


# --- /proc: when processes started ------------------------------------------------------------


def _boot_epoch() -> float:
    """The wall-clock time of boot: /proc/<pid>/stat's start times count from it."""
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)


class Processes(threading.Thread):
    """Start times of the sweep drivers and Ray workers alive, sampled every `interval_s`.

    A process's start time never changes, so a driver or trial worker (alive for the whole
    sweep) is caught by any sample; a sparse interval keeps this thread's own CPU small.
    """

    def __init__(self, interval_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.boot = _boot_epoch()
        self.tick = os.sysconf("SC_CLK_TCK")
        # (pid, start) -> {"start": epoch s, "argv": [...], "job": RAY_JOB_ID or None, "titles": set}
        self.seen: dict[tuple[int, float], dict[str, Any]] = {}
        self._done = threading.Event()

    def _sample(self) -> None:
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
                if not (argv[0].startswith("ray::") or ("sweep" in argv and "run" in argv)):
                    continue
                stat = (entry / "stat").read_text()
                start = self.boot + int(stat[stat.rindex(")") + 2 :].split()[19]) / self.tick
                key = (int(entry.name), start)  # a pid is reused; a pid and its start time are not
                if key not in self.seen:
                    env = (entry / "environ").read_bytes().split(b"\0")
                    job = next((e[11:].decode() for e in env if e.startswith(b"RAY_JOB_ID=")), None)
                    self.seen[key] = {"start": start, "argv": argv, "job": job, "titles": set()}
                self.seen[key]["titles"].add(argv[0])
            except (OSError, ValueError, IndexError):
                continue  # gone, or not ours to read

    def run(self) -> None:
        while not self._done.wait(self.interval_s):
            self._sample()

    def stop(self) -> None:
        self._done.set()
        self.join()

    def driver_start(self, sweep_id: str) -> float | None:
        found = [p["start"] for p in self.seen.values() if sweep_id in p["argv"] and "run" in p["argv"]]
        return min(found) if found else None

    def first_worker(self, job_id: str | None, after: float) -> dict[str, Any] | None:
        """The first Ray worker of the job, started after it was created, that ran an actor or task."""
        found = [
            p
            for p in self.seen.values()
            if job_id and p["job"] == job_id and p["start"] >= after and p["titles"] - {"ray::IDLE"}
        ]
        return min(found, key=lambda p: p["start"]) if found else None


# --- latency: POST -> first trial RUNNING -----------------------------------------------------


def first_trial(mlflow: Any, sweep_id: str) -> Any:
    """The sweep's parent run and its first trial run, once both exist (else None)."""
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return None
    runs = mlflow.search_runs(
        [experiment.experiment_id], f"tags.`sweep.id` = '{sweep_id}'", order_by=["attributes.start_time ASC"]
    )
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    trials = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return (parents[0], trials[0]) if parents and trials else None


def one_sweep(
    api: httpx.Client, mlflow: Any, jobs: Any, procs: Processes, name: str, epochs: int, samples: int
) -> dict[str, Any]:
    """POST a sweep, time it to its first trial's run, then wait for its end."""
    other = OtherWork()  # did other work share the CPU until the first trial ran?
    other.start()
    t0 = time.time()
    posted = api.post("/v1/sweeps", json=spec(name, epochs, samples))
    t_answer = time.time()
    posted.raise_for_status()
    sweep_id = posted.json()["id"]
    seen_running = None
    deadline = time.monotonic() + 300
    while seen_running is None:
        found = first_trial(mlflow, sweep_id)
        if found and found[1].info.status in ("RUNNING", "FINISHED", "FAILED"):
            parent, trial = found
            seen_running = time.time()
            other.stop()
        elif time.monotonic() > deadline:
            raise TimeoutError(f"sweep {sweep_id}: no trial run within 300 s")
        else:
            # The figure is the run's own start_time, not when this loop saw it: a sparse poll
            # keeps this process and the MLflow server off the cores the sweep is starting on.
            time.sleep(1.0)
    while api.get(f"/v1/sweeps/{sweep_id}").json()["status"] not in TERMINAL:
        time.sleep(1)
    status = api.get(f"/v1/sweeps/{sweep_id}").json()
    info = jobs.get_job_info(f"sweep-{sweep_id}")
    worker = procs.first_worker(info.job_id, info.start_time / 1000)
    stamps = {
        "post_sent": t0,
        "post_answered": t_answer,
        "job_created": info.start_time / 1000,
        "driver_process": procs.driver_start(sweep_id),
        "parent_run": parent.info.start_time / 1000,
        "trial_worker_process": worker["start"] if worker else None,
        "first_trial_run": trial.info.start_time / 1000,
        "first_trial_seen_running": seen_running,
    }
    return {
        "sweep_id": sweep_id,
        "status": status["status"],
        "ray_job_id": info.job_id,
        "trial_worker_titles": sorted(worker["titles"]) if worker else None,
        "stamps": stamps,
        "phases": phases(stamps),
        "post_to_first_trial_s": stamps["first_trial_run"] - t0,
        "other_work_frac": other.other_s / ((seen_running - t0) * len(os.sched_getaffinity(0))),
    }


PHASES = (
    ("POST answered", "post_sent", "post_answered"),
    ("POST -> Ray job created", "post_sent", "job_created"),
    ("job created -> driver process", "job_created", "driver_process"),
    ("driver process -> parent run", "driver_process", "parent_run"),
    ("parent run -> trial worker process", "parent_run", "trial_worker_process"),
    ("trial worker -> first trial run", "trial_worker_process", "first_trial_run"),
)


def phases(stamps: dict[str, float | None]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for label, a, b in PHASES:
        start, end = stamps[a], stamps[b]
        out[label] = end - start if start is not None and end is not None else None
    return out


def run_latency(args: argparse.Namespace, api: httpx.Client, mlflow: Any, jobs: Any) -> dict[str, Any]:
    procs = Processes()
    procs.start()
    try:
        runs = []
        for i in range(args.reps + 1):
            label = "cold" if i == 0 else f"warm{i}"
            run = one_sweep(api, mlflow, jobs, procs, f"bench-{label}", args.epochs, args.samples)
            run["label"] = label
            steps = ", ".join(f"{k} {v:.2f}" for k, v in run["phases"].items() if v is not None)
            other = f"other work {100 * run['other_work_frac']:.0f}% of the cores"
            print(f"  {label}: {run['post_to_first_trial_s']:.2f} s ({steps}; {other})", file=sys.stderr)
            runs.append(run)
    finally:
        procs.stop()
    warm = [r["post_to_first_trial_s"] for r in runs[1:]]
    by_phase = {
        label: statistics.median(v for r in runs[1:] if (v := r["phases"][label]) is not None)
        for label, _, _ in PHASES
        if any(r["phases"][label] is not None for r in runs[1:])
    }
    return {
        "runs": runs,
        "cold_s": runs[0]["post_to_first_trial_s"],
        "warm_median_s": statistics.median(warm),
        "warm_max_s": max(warm),
        "warm_phase_medians_s": by_phase,
        "goal_s": GOAL_FIRST_TRIAL_S,
        "goal_met": max(warm) <= GOAL_FIRST_TRIAL_S,
    }


# --- startup: what a new driver and a new trial worker spend before any trial -----------------

_DRIVER_STEPS = """
import json, logging, os, time
marks = [("start", time.time())]
import sweep.cli
marks.append(("import sweep.cli", time.time()))
import sweep.runner
marks.append(("import sweep.runner (Ray Tune, MLflow, ...)", time.time()))
import ray
ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False, logging_level=logging.ERROR)
marks.append(("ray.init (join the cluster)", time.time()))
from mlflow.tracking import MlflowClient
MlflowClient(os.environ["TRACKING"]).search_experiments(max_results=1)
marks.append(("first MLflow request", time.time()))
print(json.dumps(marks))
"""
_WORKER_STEPS = """
import json, time
marks = [("start", time.time())]
import ray
marks.append(("import ray", time.time()))
from ray import tune
marks.append(("import ray.tune", time.time()))
import sweep.trainable
marks.append(("import sweep.trainable", time.time()))
print(json.dumps(marks))
"""


def run_startup(cluster: Any, tracking_url: str, reps: int) -> dict[str, Any]:
    """The driver's steps before its parent run, and a worker's imports, each in a fresh process.

    Approximations, each step alone: the real driver imports while MLflow opens and Ray joins
    in parallel threads, and a real worker also sets up its runtime env and the actor.
    """
    runs: dict[str, list[dict[str, float]]] = {"driver": [], "worker": []}
    for _ in range(reps):
        for kind, code in (("driver", _DRIVER_STEPS), ("worker", _WORKER_STEPS)):
            launched = time.time()
            marks = json.loads(cluster.run_client(code, TRACKING=tracking_url).strip().splitlines()[-1])
            steps = {"python start": marks[0][1] - launched}
            steps.update({name: t - marks[i][1] for i, (name, t) in enumerate(marks[1:])})
            runs[kind].append(steps)
    return {
        kind: {step: statistics.median(r[step] for r in found) for step in found[0]}
        for kind, found in runs.items()
    }


# --- load: GET /v1/sweeps/{id} from N clients while a sweep trains --------------------------


def latency_stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    return {
        "n": len(ordered),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "max_ms": ordered[-1] * 1000,
    }


def renice(pid: int, nice: int) -> None:
    """Set the niceness of every thread of a process (Linux: each thread has its own)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.setpriority(os.PRIO_PROCESS, int(task.name), nice)


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used, all its threads together."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured_burst(
    url: str,
    headers: dict[str, str],
    path: str,
    clients: int,
    requests: int,
    server_pid: int,
    every_s: float = 0.0,
    light: bool = False,
) -> dict[str, Any]:
    """`burst`, with the CPU the service and this client used for it and the machine's load meanwhile."""
    other, ticks = OtherWork(), machine_ticks()
    other.start()
    server, client = process_cpu_s(server_pid), time.thread_time()  # this thread: not the sampler
    result = asyncio.run(burst(url, headers, path, clients, requests, every_s, light))
    server, client = process_cpu_s(server_pid) - server, time.thread_time() - client
    other.stop()
    busy, total = (a - b for a, b in zip(machine_ticks(), ticks, strict=True))
    cores = len(os.sched_getaffinity(0))
    return {
        **result,
        "service_cpu_ms_per_request": 1000 * server / result["n"],
        "client_cpu_ms_per_request": 1000 * client / result["n"],
        "service_cores_used": server / result["wall_s"],
        "machine_busy_frac": busy / total if total else None,
        "other_work_frac": other.other_s / (result["wall_s"] * cores),
    }


class LightClient:
    """One keep-alive HTTP/1.1 connection spoken with h11 (the protocol library under httpx),
    without httpx's client machinery: ~10x less CPU per request, so that 20 clients back to back
    in one Python process measure the service rather than their own event loop."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parsed = httpx.URL(url)
        self.host, self.port = parsed.host, parsed.port or 80
        self.headers = [("Host", f"{self.host}:{self.port}"), *headers.items()]

    async def __aenter__(self) -> LightClient:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.conn = h11.Connection(our_role=h11.CLIENT)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()

    async def get(self, path: str) -> tuple[int, bytes]:
        conn = self.conn
        if conn.our_state is h11.DONE:
            conn.start_next_cycle()
        self.writer.write(conn.send(h11.Request(method="GET", target=path, headers=self.headers)))
        self.writer.write(conn.send(h11.EndOfMessage()))
        status, body = 0, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await self.reader.read(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return status, body
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the service closed the connection")


async def burst(
    url: str,
    headers: dict[str, str],
    path: str,
    clients: int,
    requests: int,
    every_s: float = 0.0,
    light: bool = False,
) -> dict[str, Any]:
    """`requests` GETs of `path` shared by `clients` concurrent clients, each on its own connection.

    `every_s` 0: each client sends its next request as soon as it has the answer (the most the
    service can take); else each starts one every `every_s` seconds (clients polling), staggered.
    `light`: the clients are `LightClient`s instead of httpx's AsyncClient.
    """
    times: list[float] = []
    errors: list[str] = []
    per_client = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]

    async def one_get(http: Any) -> None:
        try:
            if light:
                status, body = await http.get(path)
            else:
                response = await http.get(path)
                status, body = response.status_code, response.content
            if status != 200:
                errors.append(f"{status}: {body[:200]!r}")
        except (httpx.HTTPError, OSError) as err:
            errors.append(f"{type(err).__name__}: {err}")

    async def client(i: int, n: int) -> None:
        connection: Any = (
            LightClient(url, headers)
            if light
            else httpx.AsyncClient(base_url=url, headers=headers, timeout=30)
        )
        async with connection as http:
            due = time.perf_counter() + every_s * i / clients
            for _ in range(n):
                if every_s:
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                    due += every_s
                start = time.perf_counter()
                await one_get(http)
                times.append(time.perf_counter() - start)

    started = time.perf_counter()
    await asyncio.gather(*(client(i, n) for i, n in enumerate(per_client)))
    wall = time.perf_counter() - started
    return {
        "clients": clients,
        "every_s": every_s,
        "client": "h11" if light else "httpx",
        **latency_stats(times),
        "errors": len(errors),
        "error_samples": errors[:5],
        "wall_s": wall,
        "requests_per_s": len(times) / wall,
    }


def run_load(
    args: argparse.Namespace, api: httpx.Client, url: str, headers: dict[str, str], server_pid: int
) -> dict[str, Any]:
    posted = api.post("/v1/sweeps", json=spec("bench-load", epochs=10_000, samples=2000))
    posted.raise_for_status()
    sweep_id = posted.json()["id"]
    path = f"/v1/sweeps/{sweep_id}"
    deadline = time.monotonic() + 300
    while ((api.get(path).json().get("trials") or {}).get("running") or 0) < 1:
        if time.monotonic() > deadline:
            raise TimeoutError(f"sweep {sweep_id}: no trial running within 300 s")
        time.sleep(1)
    time.sleep(args.settle_s)  # past the trials' first epochs: steady training, not start-up
    if args.nice is not None:  # the service and this client ahead of (or behind) the trials
        renice(server_pid, args.nice)
        renice(os.getpid(), args.nice)
    before = api.get(path).json()
    alone = measured_burst(url, headers, path, 1, args.requests_alone, server_pid)
    polling = measured_burst(url, headers, path, args.clients, args.requests, server_pid, args.every_s)
    loaded = measured_burst(url, headers, path, args.clients, args.requests, server_pid)
    # The same two with clients that cost ~10x less CPU: what the service does, not the clients.
    polling_light = measured_burst(
        url, headers, path, args.clients, args.requests, server_pid, args.every_s, light=True
    )
    loaded_light = measured_burst(url, headers, path, args.clients, args.requests, server_pid, light=True)
    after = api.get(path).json()
    api.post(f"{path}/cancel").raise_for_status()
    while api.get(path).json()["status"] not in TERMINAL:
        time.sleep(1)
    if args.nice is not None:
        renice(server_pid, 0)
        renice(os.getpid(), 0)
    return {
        "sweep_id": sweep_id,
        "nice": args.nice,
        "trials_running_before_and_after": [before["trials"]["running"], after["trials"]["running"]],
        "status_before_and_after": [before["status"], after["status"]],
        "one_client": alone,
        "polling": polling,
        "concurrent": loaded,
        "polling_light": polling_light,
        "concurrent_light": loaded_light,
        "goal_p99_ms": GOAL_P99_MS,
        **{
            f"goal_met_{name}": run["p99_ms"] <= GOAL_P99_MS and run["errors"] == 0
            for name, run in (
                ("polling", polling),
                ("saturated", loaded),
                ("polling_light", polling_light),
                ("saturated_light", loaded_light),
            )
        },
    }


# --- floor: the same polling against the app with nothing to read, beside busy cores -----------

_STILL_APP = """
import sys
sys.path.insert(0, {tests!r})
import uvicorn
from pydantic import SecretStr
from fake_sweeps import FakeSweeps, job, parent
from services.api.states import SweepState
from services.api.app import create_app
from services.api.settings import Settings
from sweep.results import SweepProgress


class Still(FakeSweeps):  # a sweep whose status is always at hand: no Ray, no MLflow
    def recent(self, sweep_id):
        return self.get(sweep_id)


sweeps = Still()
progress = SweepProgress(parent("live").record, 2, 0, 2, 0.9, ())
sweeps.states["live"] = SweepState("live", "RUNNING", None, job("live"), parent("live"), progress)
settings = Settings(ray_address="http://ray", tracking_uri="http://mlflow", api_token=SecretStr({token!r}))
uvicorn.run(create_app(settings, sweeps=sweeps), host="127.0.0.1", port={port}, log_level="info")
"""


def run_floor(args: argparse.Namespace, token: str) -> list[dict[str, Any]]:
    """Polling GETs against the app with an in-memory sweep (`sweep serve`'s uvicorn and FastAPI
    app, nothing to read) with 0, then 2 busy-looping processes standing in for 2 training trials:
    what this machine allows any Python service, whatever it reads."""
    import subprocess

    from cluster import free_port

    port = free_port()
    code = _STILL_APP.format(tests=str(ROOT / "tests" / "unit"), token=token, port=port)
    server = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=tempfile.gettempdir(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    results = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the floor's app did not start")
            time.sleep(0.3)
        for burners in (0, 2):
            busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(burners)]
            try:
                found = measured_burst(
                    url, headers, "/v1/sweeps/live", args.clients, args.requests, server.pid, args.every_s
                )
            finally:
                for proc in busy:
                    proc.kill()
                    proc.wait()
            results.append({"busy_loops": burners, **found})
    finally:
        server.terminate()
        server.wait(timeout=30)
    return results


# --- the parent: servers, runs, report ------------------------------------------------------


def render(report: dict[str, Any]) -> None:
    latency = report.get("latency")
    if latency:
        print("\nPOST /v1/sweeps -> first trial's MLflow run RUNNING (s)")
        labels = [label for label, _, _ in PHASES]
        print("  " + " | ".join(["run", "total", *labels, "other work"]))
        for run in latency["runs"]:
            cells = [f"{v:.2f}" if v is not None else "-" for v in run["phases"].values()]
            cells.append(f"{100 * run['other_work_frac']:.0f}%")
            print(f"  {run['label']} | {run['post_to_first_trial_s']:.2f} | " + " | ".join(cells))
        print(
            f"  warm: median {latency['warm_median_s']:.2f} s, max {latency['warm_max_s']:.2f} s "
            f"(goal <= {GOAL_FIRST_TRIAL_S:.0f} s: {'met' if latency['goal_met'] else 'MISSED'}); "
            f"cold {latency['cold_s']:.2f} s"
        )
        for kind, steps in latency["startup_medians_s"].items():
            print(
                f"  a fresh {kind} process, each step alone (median of 3, s): "
                + ", ".join(f"{name} {v:.2f}" for name, v in steps.items())
            )
    for floor in report.get("floor") or []:
        print(
            f"\nfloor: the app with an in-memory sweep, {floor['clients']} clients each every "
            f"{floor['every_s']:g} s, {floor['busy_loops']} busy loops beside it: p50 {floor['p50_ms']:.1f}, "
            f"p95 {floor['p95_ms']:.1f}, p99 {floor['p99_ms']:.1f}, max {floor['max_ms']:.1f} ms; "
            f"other work {100 * floor['other_work_frac']:.0f}% of the cores"
        )
    for load in report["load"]:
        print(
            f"\nGET /v1/sweeps/{{id}} while {load['sweep_id']} trains (ms), "
            f"SWEEP_STATUS_CACHE_S={load['status_cache_s']}"
            + (f", service and clients at nice {load['nice']}" if load["nice"] is not None else "")
        )
        for key in ("one_client", "polling", "concurrent", "polling_light", "concurrent_light"):
            if key not in load:  # results written before the light clients
                continue
            s = load[key]
            pace = f"each every {s['every_s']:g} s" if s["every_s"] else "back to back"
            print(
                f"  {s['clients']:>2} {s.get('client', 'httpx')} client(s) {pace}, {s['n']} requests: "
                f"p50 {s['p50_ms']:.1f}, "
                f"p95 {s['p95_ms']:.1f}, p99 {s['p99_ms']:.1f}, max {s['max_ms']:.1f}; "
                f"{s['requests_per_s']:.0f} req/s; errors {s['errors']}; CPU per request: service "
                f"{s['service_cpu_ms_per_request']:.2f} ms, client {s['client_cpu_ms_per_request']:.2f} ms; "
                f"other work {100 * s['other_work_frac']:.0f}% of the cores"
            )
        met = {k[9:]: "met" if v else "MISSED" for k, v in load.items() if k.startswith("goal_met_")}
        print(
            f"  trials running before/after: {load['trials_running_before_and_after']}; goal p99 <= "
            f"{GOAL_P99_MS:.0f} ms: " + ", ".join(f"{k} {v}" for k, v in met.items())
        )
    other = report["other_work"]
    print(
        f"\nother work meanwhile: {other['other_core_s']:.0f} core-s of processes this benchmark did not "
        f"start ({100 * other['other_frac']:.0f}% of the cores); load average "
        f"{report['machine']['load_average']} -> {report['machine']['load_average_after']}"
    )


def parent(args: argparse.Namespace) -> int:
    from api_server import TOKEN, ApiServer
    from cluster import MlflowServer, PostgresServer, RayCluster
    from mlflow.tracking import MlflowClient

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    machine = machine_info()
    report: dict[str, Any] = {"started": stamp, "settings": vars(args).copy()}
    other, ticks = OtherWork(), machine_ticks()
    other.start()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="api-bench-") as name:
        tmp = Path(name)
        with (
            PostgresServer(tmp / "postgres") as postgres,
            MlflowServer(postgres.url, tmp / "artifacts") as tracking,
            RayCluster(tmp / "ray", nodes=args.nodes, cpus_per_node=args.cpus_per_node) as cluster,
        ):
            inherited = {k: v for k, v in os.environ.items() if not k.startswith(("SWEEP_", "RAY_ADDRESS"))}
            env = {
                **inherited,
                **cluster.env,
                "SWEEP_RAY_ADDRESS": cluster.dashboard_url,
                "SWEEP_TRACKING_URI": tracking.url,
                "SWEEP_API_TOKEN": TOKEN,
                **dict(e.split("=", 1) for e in args.env),
            }
            os.environ.update(cluster.env)  # before Ray is imported: it reads its auth mode once
            from sweep.jobs import job_client

            jobs = job_client(cluster.dashboard_url)
            mlflow = MlflowClient(tracking.url)
            print(f"Ray {args.nodes} x {args.cpus_per_node} CPU, MLflow {tracking.url}", file=sys.stderr)
            report["load"] = []
            for i, cache_s in enumerate(args.status_cache_s):
                # A fresh service for each setting of its status cache; the first also runs latency.
                env_i = {**env, "SWEEP_STATUS_CACHE_S": str(cache_s)}
                with ApiServer(tmp / f"serve-{i}", env_i) as service, service.client() as api:
                    if i == 0 and "latency" in args.measure:
                        report["latency"] = run_latency(args, api, mlflow, jobs)
                        report["latency"]["startup_medians_s"] = run_startup(cluster, tracking.url, 3)
                    if "load" in args.measure:
                        headers = {"Authorization": f"Bearer {TOKEN}"}
                        pid = service._proc.pid  # type: ignore[union-attr]
                        load = run_load(args, api, service.url, headers, pid)
                        report["load"].append({"status_cache_s": cache_s, **load})
    if "floor" in args.measure:
        report["floor"] = run_floor(args, TOKEN)
    wall = time.perf_counter() - started
    other.stop()
    busy, total = (a - b for a, b in zip(machine_ticks(), ticks, strict=True))
    cores = len(os.sched_getaffinity(0))
    report["other_work"] = {
        "wall_s": wall,
        "other_core_s": other.other_s,
        "other_frac": other.other_s / (wall * cores),
        "own_core_s": other.mine_s,
        "machine_busy_frac": busy / total if total else None,
    }
    report["machine"] = {**machine, "load_average_after": os.getloadavg()}
    render(report)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"api-{stamp}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--measure", default="latency,load,floor", help="comma-separated: latency, load, floor"
    )
    parser.add_argument("--reps", type=int, default=5, help="latency: warm sweeps after the cold one")
    parser.add_argument("--epochs", type=int, default=2, help="latency: epochs of each sweep's 2 trials")
    parser.add_argument("--samples", type=int, default=300, help="latency: synthetic rows")
    parser.add_argument("--clients", type=int, default=20, help="load: concurrent clients")
    parser.add_argument("--requests", type=int, default=2000, help="load: GETs shared by the clients")
    parser.add_argument("--requests-alone", type=int, default=100, help="load: GETs of one client first")
    parser.add_argument(
        "--every-s", type=float, default=0.5, help="load: each polling client's interval (then back to back)"
    )
    parser.add_argument("--settle-s", type=float, default=5.0, help="load: wait after trials start")
    parser.add_argument(
        "--nice",
        type=int,
        help="load: run the service and the clients at this niceness during the GETs (-10: ahead of the "
        "trials and of other processes; needs root)",
    )
    parser.add_argument("--nodes", type=int, default=1, help="Ray nodes")
    parser.add_argument("--cpus-per-node", type=int, default=2)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for sweep serve")
    parser.add_argument(
        "--status-cache-s",
        type=lambda text: [float(x) for x in text.split(",") if x.strip()],
        default=[1.0],
        help="load: the service's SWEEP_STATUS_CACHE_S, one service (and load run) each, e.g. 0,1",
    )
    args = parser.parse_args()
    args.measure = [m.strip() for m in args.measure.split(",") if m.strip()]
    unknown = [m for m in args.measure if m not in ("latency", "load", "floor")]
    if unknown:
        parser.error(f"--measure: unknown {', '.join(unknown)} (allowed: latency, load, floor)")
    for name in (
        "reps",
        "epochs",
        "samples",
        "clients",
        "requests",
        "requests_alone",
        "nodes",
        "cpus_per_node",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: must be >= 1 (got {getattr(args, name)})")
    if args.every_s <= 0:
        parser.error(f"--every-s: must be > 0 (got {args.every_s})")
    bad = [e for e in args.env if "=" not in e]
    if bad:
        parser.error(f"--env: NAME=VALUE expected (got {bad[0]!r})")
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
