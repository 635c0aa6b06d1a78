"""The FastAPI application: routes, error handling, the OpenAPI document, and the start-up reconcile."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.api import problems
from services.api.queue import Turns
from services.api.routes import probes, v1
from services.api.settings import Settings
from services.api.sweeps import Sweeps
from sweep.spec import SweepSpec

log = logging.getLogger("sweep.api")


def create_app(settings: Settings, sweeps: Sweeps | None = None) -> FastAPI:
    """The app for one cluster and one tracking server (`sweeps` defaults to the settings' own)."""
    if sweeps is None:
        if not settings.ray_address or not settings.tracking:
            raise ValueError(
                "the service needs SWEEP_RAY_ADDRESS and SWEEP_TRACKING_URI (or MLFLOW_TRACKING_URI)"
            )
        sweeps = Sweeps(
            settings.ray_address,
            settings.tracking,
            settings.job_runs_dir,
            settings.status_cache_s,
            settings.max_queued_sweeps,
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sweeps whose job a restarted head forgot turn FAILED now, not at their first read;
        # in the background, so a slow MLflow does not hold the service's start.
        threading.Thread(target=_reconcile, args=(sweeps,), name="reconcile", daemon=True).start()
        yield

    app = FastAPI(
        title="sweep",
        version="1",
        summary="Keras hyperparameter sweeps as Ray jobs, tracked in MLflow",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.sweeps = sweeps
    app.state.turns = Turns(settings.max_concurrent_submits, settings.submit_wait_s)
    app.state.bodies = {}  # GET /v1/sweeps/{id}: the JSON of each sweep's last read
    problems.install(app)
    app.include_router(v1)
    app.include_router(probes)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _reconcile(sweeps: Sweeps) -> None:
    try:
        log.info("reconciled %d sweeps", sweeps.reconcile())
    except Exception as err:  # reads reconcile again; the service is up either way
        log.warning("start-up reconcile skipped: %s", err)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the spec's schema, which POST /v1/sweeps reads from the raw body."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    spec = SweepSpec.model_json_schema(ref_template="#/components/schemas/{model}", mode="validation")
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(spec.pop("$defs", {}))
    schemas["SweepSpec"] = spec
    app.openapi_schema = doc
    return doc
