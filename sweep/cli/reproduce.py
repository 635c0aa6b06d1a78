"""`sweep reproduce`: one trial trained again here, without Ray, its final metrics held against its run's."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from sweep.cli.root import RunsDir, TrackingUri, console, fail, fail_spec
from sweep.spec import SpecError


def reproduce(
    run_id: Annotated[str, typer.Argument(help="A trial's MLflow run id (a child run of the sweep).")],
    runs_dir: RunsDir = Path("runs"),
    tracking_uri: TrackingUri = None,
) -> None:
    """Train one trial again here (no Ray) and say whether its final metrics match its run's.

    Exit 0 when every metric matches exactly, 1 when one differs, 2 when it cannot be re-run
    (the data's fingerprint changed, no record, not a finished trial).
    """
    import logging

    from sweep.data import DataError
    from sweep.reproduce import ReproduceError, reproduce_trial

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    try:
        done = reproduce_trial(run_id, runs_dir, tracking_uri)
    except (ReproduceError, DataError) as err:
        fail([str(err)])
    except SpecError as err:
        fail_spec(err)
    config = ", ".join(f"{k} {v}" for k, v in done.config.items())
    lines = [
        f"trial           {done.run_name} (sweep {done.sweep_id})",
        f"configuration   {config}, {done.epochs} epochs",
        f"data            fingerprint {done.data_fingerprint[:16]} matches the run's",
        *(
            f"version         {k} {then} recorded, {now} here"
            for k, (then, now) in done.version_changes.items()
        ),
    ]
    for line in lines:
        console.print(escape(line), highlight=False, soft_wrap=True)
    table = Table(title=f"final metrics of run {done.run_id}")
    for col in ("metric", "recorded", "reproduced", "difference"):
        table.add_column(col)
    for m in done.metrics:
        table.add_row(
            m.name, repr(m.recorded), repr(m.reproduced), "exact" if m.exact else f"{m.difference:.3g}"
        )
    console.print(table)
    if done.identical:
        console.print(f"identical: all {len(done.metrics)} metrics match exactly")
        return
    worst = done.largest
    differ = sum(not m.exact for m in done.metrics)
    console.print(
        f"differs: {differ} of {len(done.metrics)} metrics differ; the largest difference is "
        f"{worst.difference:.3g} ({worst.name})"
    )
    raise typer.Exit(1)
