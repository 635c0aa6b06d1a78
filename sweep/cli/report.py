"""`sweep report`: a sweep's analysis from MLflow, or a trial table's from a CSV file (no Ray, no MLflow)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sweep.cli.render import render_analysis
from sweep.cli.root import RunsDir, TrackingUri, console, fail, load, store_uri


def report(
    sweep_id: Annotated[str | None, typer.Argument(help="The sweep's id (none with --trials).")] = None,
    runs_dir: RunsDir = Path("runs"),
    tracking_uri: TrackingUri = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the report files.")] = None,
    log: Annotated[
        bool, typer.Option("--log/--no-log", help="Also log the report on the parent run.")
    ] = True,
    trials: Annotated[
        Path | None,
        typer.Option(
            "--trials", help="Analyse this trial table (CSV as `sweep results --csv` writes) instead."
        ),
    ] = None,
    spec_file: Annotated[
        Path | None, typer.Option("--spec", help="With --trials: the spec they ran.")
    ] = None,
    curves: Annotated[
        Path | None,
        typer.Option("--curves", help="With --trials: per-epoch CSV (run_id, epoch, val_accuracy)."),
    ] = None,
) -> None:
    """Analyse a sweep from MLflow, or a trial table from a CSV file (--trials, --spec; no Ray, no
    MLflow): tables and verdict here, report.md, report.html and analysis.json on disk."""
    if trials is not None or spec_file is not None or curves is not None:
        _report_table(sweep_id, trials, spec_file, curves, out)
        return
    if sweep_id is None:
        fail(["give a SWEEP_ID, or --trials FILE.csv --spec SPEC.yaml --out DIR"])
    from sweep.publish import publish_report
    from sweep.results import SweepNotFound
    from sweep.store.template import open_store

    client = open_store(store_uri(runs_dir, tracking_uri))
    out_dir = out or runs_dir / sweep_id / "report"
    try:
        published = publish_report(client, sweep_id, out_dir, log=log)
    except SweepNotFound as err:
        fail([str(err)])
    render_analysis(published.analysis)
    console.print(
        f"\nwrote {published.files.markdown}, {published.files.html.name}, "
        f"{published.files.json.name} and {len(published.files.figures)} figures"
    )


def _report_table(
    sweep_id: str | None, trials: Path | None, spec_file: Path | None, curves: Path | None, out: Path | None
) -> None:
    if sweep_id is not None or trials is None or spec_file is None:
        fail(["--trials FILE.csv needs --spec SPEC.yaml, and no SWEEP_ID"])
    from sweep.report.offline import report_trials_csv
    from sweep.report.trial_csv import TrialTableError

    spec = load(spec_file)
    try:
        done = report_trials_csv(trials, spec, out or Path(f"{trials.stem}-report"), curves)
    except TrialTableError as err:
        fail([f"{err.source}: {line}" for line in err.errors])
    except ValueError as err:  # a table the analysis cannot judge
        fail([f"{trials}: {err}"])
    render_analysis(done.analysis)
    console.print(f"\nwrote {done.files.markdown}, {done.files.html.name} and {done.files.json.name}")
