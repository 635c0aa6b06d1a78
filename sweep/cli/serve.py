"""Servers over the sweeps: `sweep serve` (the REST API) and `sweep ui` (MLflow's UI on the local store)."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from sweep.cli.root import RunsDir, TrackingUri, console, fail, store_uri


def serve(
    host: Annotated[
        str, typer.Option(help="Interface to bind; off loopback SWEEP_API_TOKEN is required.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
) -> None:
    """Serve the REST API (docs/api.md); without SWEEP_RAY_ADDRESS it runs a Ray head of its own."""
    # The service stands on the library (services.api imports sweep), so it is loaded by name:
    # the library never imports it.
    service = importlib.import_module("services.api.serve")
    try:
        service.serve(host, port)
    except service.ServeError as err:
        fail(list(err.args))


def ui(
    runs_dir: RunsDir = Path("runs"),
    tracking_uri: TrackingUri = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
) -> None:
    """Open the MLflow UI on the sweeps' store (http://127.0.0.1:PORT)."""
    uri = store_uri(runs_dir, tracking_uri)
    if not uri.startswith("sqlite:"):
        fail([f"{uri} is a server already: open it in a browser"])
    args = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",  # one person's browser; MLflow's default of 4 processes costs a laptop seconds
        "1",
    ]
    from sweep.results import list_sweeps, mlflow_run_url
    from sweep.store.template import open_store

    here = f"http://127.0.0.1:{port}"
    console.print(f"MLflow UI on {here} (Ctrl-C stops it)")
    # The bare address opens MLflow's GenAI view; the link lands on the newest sweep's runs.
    for newest in list_sweeps(open_store(uri), limit=1):
        link = mlflow_run_url(here, newest["experiment_id"], newest["parent_run_id"])
        console.print(f"newest sweep    {newest['sweep_id']}  {link}", soft_wrap=True)
    sys.stdout.flush()  # execv replaces the process before Python's buffers are written
    os.execv(sys.executable, args)
