"""The Ray a sweep's driver runs on: a cluster it joins (or a local Ray), and its signals."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sweep.settings import Settings


class ClusterError(RuntimeError):
    """A Ray address this engine cannot use."""


def cluster_address(address: str | None) -> str | None:
    """The cluster to join: `--ray-address`, else RAY_ADDRESS (set inside a Ray job), else none."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and address.startswith("ray://"):
        raise ClusterError(
            f"{address}: Ray Client (ray://) addresses are not supported: the sweep's driver must run "
            "on the cluster to record trials as they end. Submit it as a job instead "
            "(`sweep submit SPEC --address http://HEAD:8265`), or run `sweep run` on a cluster node "
            "with --ray-address auto."
        )
    return address


def _job_config() -> dict[str, Any]:
    """The runtime env and metadata of the Ray job this driver runs in ({} outside a job)."""
    raw = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    try:
        return dict(json.loads(raw)) if raw else {}
    except ValueError:
        return {}


def cluster_runtime_env() -> dict[str, Any]:
    """What the cluster's workers need beyond what the job already ships.

    The `sweep` package travels as a py_module, so nodes without it installed run trials. Inside
    a job, Ray refuses a driver runtime env that repeats a field or variable of the job's own, so
    only what the job lacks is added.
    """
    job_env = _job_config().get("runtime_env") or {}
    env: dict[str, Any] = {}
    job_vars = job_env.get("env_vars") or {}
    extra_vars = {k: v for k, v in Settings().worker_env().items() if k not in job_vars}
    if extra_vars:
        env["env_vars"] = extra_vars
    if "py_modules" not in job_env:
        env["py_modules"] = [str(Path(__file__).resolve().parent)]
    return env


def job_submission_id() -> str | None:
    """The Ray job submission id, when this driver runs as a Ray job."""
    metadata = _job_config().get("metadata") or {}
    return metadata.get("job_submission_id") or None


def job_run_tags() -> dict[str, str]:
    """Tags for the sweep's parent run from the Ray job it runs as: the job's submission id and
    the `sweep.*` metadata its submitter set (e.g. the REST service's idempotency-key hash)."""
    metadata = _job_config().get("metadata") or {}
    tags = {
        k: str(v)
        for k, v in metadata.items()
        if k.startswith("sweep.") and k not in ("sweep.id", "sweep.name")
    }
    job = job_submission_id()
    return {"ray.job_submission_id": job, **tags} if job else {}


def init_ray(address: str | None, cpus: int | None) -> None:
    """Join the cluster at `address`, or start a local Ray of the sweep's own with `cpus` CPUs."""
    import ray

    if ray.is_initialized():
        return
    # A local Ray's workers inherit the driver's environment.
    for key, value in Settings().worker_env().items():
        os.environ.setdefault(key, value)
    if address:
        # A cluster's size is its own: no num_cpus or memory arguments here.
        ray.init(
            address=address,
            runtime_env=cluster_runtime_env(),
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
        return
    # "local": a new Ray of our own even when a cluster runs on this machine (plain ray.init()
    # would join the one /tmp/ray/ray_current_cluster names).
    ray.init(
        address="local",
        num_cpus=cpus or os.cpu_count() or 1,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        object_store_memory=256 * 1024 * 1024,
    )


def _as_interrupt(signum: int, frame: Any) -> None:
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)  # Tune's graceful stop while trials run
    else:
        raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """SIGTERM (`ray job stop`, Kubernetes) stops a sweep the way Ctrl-C does.

    Ray blocks SIGINT in the processes it starts, a job's driver included: unblock it, and hand
    SIGTERM to whatever handles SIGINT now (Tune's graceful stop while trials run, else
    KeyboardInterrupt). Main thread only, as Python's signal handlers are.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    signal.signal(signal.SIGTERM, _as_interrupt)


@contextlib.contextmanager
def sigterm_handled() -> Iterator[None]:
    """Keep `stop_on_sigterm`'s handler across a `ray.init`, which installs Ray's own (it exits,
    or aborts the process from Ray's C++ core, leaving the sweep's runs RUNNING)."""
    ours = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is _as_interrupt
    )
    try:
        yield
    finally:
        if ours:
            signal.signal(signal.SIGTERM, _as_interrupt)
