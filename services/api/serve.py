"""`sweep serve`: the settings checked, a local Ray head if no cluster is named, then uvicorn."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from services.api.settings import Settings, is_loopback
from sweep.settings import apply_environment, local_tracking_uri, setting_errors


class ServeError(RuntimeError):
    """The service cannot start as configured; each argument is one line saying why and what to set."""


def check(settings: Settings, host: str) -> None:
    if not is_loopback(host) and settings.api_token is None:
        raise ServeError(
            f"refusing to serve on {host} without a token: set SWEEP_API_TOKEN (clients then send "
            "`Authorization: Bearer <token>`), or serve on 127.0.0.1"
        )
    if settings.api_token is not None and len(settings.api_token.get_secret_value()) < 16:
        raise ServeError(
            "SWEEP_API_TOKEN is too short: use at least 16 characters (e.g. `openssl rand -hex 32`)"
        )
    if settings.ray_address and not settings.tracking:
        raise ServeError(
            "SWEEP_RAY_ADDRESS names a cluster but no tracking server is set: set SWEEP_TRACKING_URI "
            "(the service and the cluster's jobs must read and write the same MLflow)"
        )
    if settings.data_root is not None and not settings.data_root.is_dir():
        raise ServeError(f"SWEEP_DATA_ROOT {settings.data_root} is not a folder")


@contextlib.contextmanager
def cluster(settings: Settings) -> Iterator[Settings]:
    """The settings with a Ray address: the configured cluster, or a local head while this runs."""
    if settings.ray_address:
        yield settings
        return
    from services.api.ray_head import LocalRayHead
    from sweep.store.template import seed_local_store

    runs_dir = (settings.runs_dir or Path("runs")).resolve()
    tracking = settings.tracking or local_tracking_uri(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    seed_local_store(tracking)  # a new local store from the migrated template, as `sweep run` makes it
    with LocalRayHead(cpus=settings.ray_cpus, slots=settings.max_running_sweeps) as head:
        os.environ.update(head.client_env)
        yield settings.model_copy(
            update={"ray_address": head.address, "tracking_uri": tracking, "runs_dir": runs_dir}
        )


def start(host: str, settings: Settings | None = None) -> Settings:
    """The service's settings, read and checked, and its environment applied (the library's, with
    the service's shorter MLflow timeout): what `serve` does before MLflow or Ray load."""
    if settings is None:
        try:
            settings = Settings()
        except ValidationError as err:
            raise ServeError(*setting_errors(err)) from None
    check(settings, host)
    apply_environment(settings)
    return settings


def serve(host: str, port: int, settings: Settings | None = None) -> None:
    """Serve until SIGINT/SIGTERM; a local head started here stops with the service."""
    settings = start(host, settings)
    import uvicorn

    from services.api.app import create_app

    # uvicorn re-raises the SIGTERM it stopped on; as SystemExit it stops the local head on its way out.
    signal.signal(signal.SIGTERM, _exit)
    with cluster(settings) as ready:
        print(f"sweep serve: Ray Jobs API {ready.ray_address}, MLflow {ready.tracking}", flush=True)
        uvicorn.run(create_app(ready), host=host, port=port, log_level="info")


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
