"""`sweep results` and `sweep list`: what the tracking store holds, read back from MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sweep.cli.render import IdTable
from sweep.cli.root import RunsDir, TrackingUri, console, fail, store_uri


def results(
    sweep_id: Annotated[str, typer.Argument(help="The sweep's id.")],
    runs_dir: RunsDir = Path("runs"),
    tracking_uri: TrackingUri = None,
    output: Annotated[
        Path | None, typer.Option("--csv", help="Also write the table to this CSV file.")
    ] = None,
) -> None:
    """Print a sweep's trial table, read back from MLflow."""
    from sweep.results import SweepNotFound, find_sweep, trial_table
    from sweep.store.template import open_store

    client = open_store(store_uri(runs_dir, tracking_uri))
    try:
        record = find_sweep(client, sweep_id)
    except SweepNotFound as err:
        fail([str(err)])
    trials = trial_table(client, record)
    table = Table(title=f"{sweep_id} · {record.state} · {len(trials)}/{record.trials_total} trials")
    for col in (
        "placement",
        "dropout",
        "optimizer",
        "seed",
        "status",
        "val acc",
        "best val acc",
        "val loss",
        "epochs",
        "s",
        "error",
    ):
        table.add_column(col)
    for _, r in trials.iterrows():
        table.add_row(
            str(r.placement),
            f"{r.dropout:g}",
            str(r.optimizer),
            str(r.seed),
            str(r.status),
            f"{r.final_val_accuracy:.4f}",
            f"{r.best_val_accuracy:.4f}",
            f"{r.final_val_loss:.4f}",
            f"{r.epochs_completed:.0f}",
            f"{r.duration_s:.1f}",
            str(r.error or ""),
        )
    console.print(table)
    if output:
        trials.to_csv(output, index=False)
        console.print(f"wrote {output}")


def list_(runs_dir: RunsDir = Path("runs"), tracking_uri: TrackingUri = None) -> None:
    """List the sweeps in the tracking store, newest first."""
    from sweep.results import list_sweeps
    from sweep.store.template import open_store

    rows = [
        (str(s["sweep_id"]), str(s["state"]), str(s["trials"]), str(s["started"])[:19], s["parent_run_id"])
        for s in list_sweeps(open_store(store_uri(runs_dir, tracking_uri)))
    ]
    columns = ("sweep id", "state", "trials", "started (UTC)", "parent run")
    console.print(IdTable("sweeps", columns, rows, ids=("parent run",)))
