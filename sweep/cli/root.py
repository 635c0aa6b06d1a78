"""The `sweep` Typer app, its entry callback, the options commands share, and how a command fails."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from sweep.settings import Settings, apply_environment, setting_errors
from sweep.spec import SpecError, SweepSpec, load_spec

app = typer.Typer(
    name="sweep",
    help="Distributed Keras sweeps on Ray Tune, tracked in MLflow: where does BatchNormalization go?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)

RunsDir = Annotated[
    Path,
    typer.Option(
        "--runs-dir",
        envvar="SWEEP_RUNS_DIR",
        help="Where sweeps and the local MLflow store live (on a cluster: a path every node sees).",
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Join this Ray cluster (HOST:PORT or auto) instead of starting one; "
        "inside a Ray job RAY_ADDRESS is used.",
    ),
]
JobsAddress = Annotated[
    str,
    typer.Option(
        "--address",
        envvar="RAY_API_SERVER_ADDRESS",
        help="The cluster's Jobs API: http://HEAD:8265 (or RAY_API_SERVER_ADDRESS).",
    ),
]
TrackingUri = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, the spec's, or the local store).",
    ),
]
Cpus = Annotated[
    int | None,
    typer.Option("--cpus", min=1, help="CPUs for the local Ray this starts (default: every core)."),
]
Overrides = Annotated[list[str] | None, typer.Option("--set", help="Override a field: key.path=value.")]
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def fail(lines: list[str], code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print each line as an error on stderr and end the command with `code`."""
    for line in lines:
        errors.print(f"[red]error[/red] {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def fail_spec(err: SpecError) -> NoReturn:
    """End the command with every error of a spec, each located in its file."""
    where = f"{err.source}: " if err.source else ""
    fail([f"{where}{line}" for line in err.errors])


def load(file: Path, overrides: list[str] | None = None) -> SweepSpec:
    """The spec in `file` with `overrides` applied, or every error in it (exit 2)."""
    try:
        return load_spec(file, overrides or [])
    except SpecError as err:
        fail_spec(err)


def store_uri(runs_dir: Path, tracking_uri: str | None) -> str:
    """The tracking URI a command reads: the option's, else MLFLOW_TRACKING_URI, else the local store."""
    return Settings().resolve_tracking_uri(runs_dir, tracking_uri, None)


def check_id(sweep_id: str) -> None:
    """End the command (exit 2) when `sweep_id` is not shaped as a sweep id."""
    from sweep.jobs import check_sweep_id

    try:
        check_sweep_id(sweep_id)
    except SpecError as err:
        fail(err.errors)


@app.callback()
def _entry(ctx: typer.Context) -> None:
    # Every command starts here: the settings checked (a bad SWEEP_* value is a located error),
    # then the environment MLflow, Ray and Tune read. `serve` applies the service's own instead.
    from pydantic import ValidationError

    try:
        settings = Settings()
    except ValidationError as err:
        fail(setting_errors(err))
    if ctx.invoked_subcommand != "serve":
        apply_environment(settings)
