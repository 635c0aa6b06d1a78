"""The `sweep` command line: parse, call the library, render. No logic of its own."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.table import Table

from sweep.settings import Settings, apply_environment, setting_errors
from sweep.spec import PLACEMENTS, SpecError, SweepSpec, load_spec

if TYPE_CHECKING:
    import pandas as pd

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
EXIT_BAD_INPUT = 2


def _fail(lines: list[str], code: int = EXIT_BAD_INPUT) -> NoReturn:
    for line in lines:
        errors.print(f"[red]error[/red] {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _load(file: Path, overrides: list[str] | None = None) -> SweepSpec:
    try:
        return load_spec(file, overrides or [])
    except SpecError as err:
        where = f"{err.source}: " if err.source else ""
        _fail([f"{where}{line}" for line in err.errors])


def _uri(runs_dir: Path, tracking_uri: str | None) -> str:
    return Settings().resolve_tracking_uri(runs_dir, tracking_uri, None)


@app.callback()
def _entry(ctx: typer.Context) -> None:
    # Every command starts here: the settings checked (a bad SWEEP_* value is a located error),
    # then the environment MLflow, Ray and Tune read. `serve` applies the service's own instead.
    from pydantic import ValidationError

    try:
        settings = Settings()
    except ValidationError as err:
        _fail(setting_errors(err))
    if ctx.invoked_subcommand != "serve":
        apply_environment(settings)


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="Spec file (YAML or JSON).")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a field: key.path=value.")] = None,
) -> None:
    """Check a spec, and the data file it names; print the trial count or every error (exit 2)."""
    spec = _load(file, set_)
    if spec.dataset.path is not None:  # read it now, not when the sweep has started
        from sweep.data import DataError, load_sweep_data

        try:
            load_sweep_data(spec)
        except DataError as err:
            _fail([f"{file}: {err}"])
    console.print(f"valid: {spec.trial_count} trials ({spec.describe_count()})", highlight=False)


@app.command()
def schema() -> None:
    """Print the spec's JSON Schema (for editors)."""
    print(json.dumps(SweepSpec.model_json_schema(mode="validation"), indent=2))


@contextmanager
def _tensorflow_quiet() -> Iterator[None]:
    """TensorFlow's start-up lines (absl, CUDA probing) kept off stderr.

    Its C++ side writes some of them to file descriptor 2 before TF_CPP_MIN_LOG_LEVEL is read,
    so the descriptor itself points at /dev/null meanwhile; a Python error still shows, after it.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@app.command("show-model")
def show_model(
    file: Annotated[Path, typer.Argument(help="Spec file.")],
    placement: Annotated[str, typer.Option(help=f"One of {', '.join(PLACEMENTS)}.")] = "before_activation",
    dropout: Annotated[float | None, typer.Option(help="Dropout rate (default: the spec's first).")] = None,
) -> None:
    """Print the network one trial would build, one line per layer."""
    spec = _load(file)
    if placement not in PLACEMENTS:
        _fail([f"--placement: must be one of {', '.join(PLACEMENTS)} (got {placement!r})"])
    rate = dropout
    if rate is None:
        rate = spec.search.dropout[0] if isinstance(spec.search.dropout, list) else spec.search.dropout.low
    if not 0 <= rate < 1:
        _fail([f"--dropout: must be >= 0 and < 1 (got {rate})"])
    from sweep.data import DataError, load_dataset

    try:
        data = load_dataset(spec.dataset, image=spec.model.kind == "cnn")
    except DataError as err:
        _fail([str(err)])
    with _tensorflow_quiet():
        from sweep.models import build_model, describe_model

        model = build_model(spec.model, placement, rate, data.input_shape, data.n_classes)
    table = Table(title=f"{spec.model.kind} · {placement} · dropout {rate:g}")
    table.add_column("#", justify="right")
    table.add_column("layer")
    table.add_column("class")
    table.add_column("output shape")
    for i, (name, cls, shape) in enumerate(describe_model(model)):
        table.add_row(str(i), name, cls, shape)
    console.print(table)
    console.print(f"parameters: {model.count_params():,}")


def _progress_display() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]trials"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}"),
        TextColumn("best {task.fields[best]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _read_trials(uri: str, sweep_id: str) -> pd.DataFrame:
    from mlflow.tracking import MlflowClient

    from sweep.results import find_sweep, trial_table

    client = MlflowClient(uri)
    return trial_table(client, find_sweep(client, sweep_id))


def _best_table(trials: pd.DataFrame, metric: str, mode: str, limit: int = 5) -> IdTable | None:
    column = f"final_{metric}"
    ok = trials[trials.status == "FINISHED"].dropna(subset=[column])
    if ok.empty:
        return None
    best = ok.sort_values(column, ascending=(mode == "min")).head(limit)
    rows = [
        (
            row.placement,
            f"{row.dropout:g}",
            row.optimizer,
            str(row.seed),
            f"{row[column]:.4f}",
            f"{row.epochs_completed:.0f}",
            row.run_id,
        )
        for _, row in best.iterrows()
    ]
    columns = ("placement", "dropout", "optimizer", "seed", metric, "epochs", "run id")
    return IdTable(f"best trials by {metric}", columns, rows, ids=("run id",))


class IdTable:
    """A table whose first column and id columns print whole, in a console of any width.

    Where one line a row does not fit, each id goes on its own line under the row's first cell;
    the other columns shrink as rich shrinks them. Other commands take these ids as arguments.
    """

    def __init__(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], ids: Sequence[str]):
        self.title, self.columns, self.rows = title, tuple(columns), [tuple(r) for r in rows]
        self._ids = [self.columns.index(name) for name in ids]

    def _table(self, stacked: bool) -> Table:
        table = Table(title=self.title)
        first = [0, *self._ids] if stacked else [0]
        rest = [i for i in range(1, len(self.columns)) if i not in first]
        for cells in (first, *([i] for i in rest)):
            whole = cells == first or cells[0] in self._ids
            table.add_column("\n".join(self.columns[i] for i in cells), no_wrap=whole)
        for row in self.rows:
            table.add_row("\n".join(row[i] for i in first), *(row[i] for i in rest))
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        wide = self._table(stacked=False)
        fits = wide.__rich_measure__(console, options).maximum <= options.max_width
        yield wide if fits else self._table(stacked=True)


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Spec file (YAML or JSON).")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a field: key.path=value.")] = None,
    runs_dir: RunsDir = Path("runs"),
    tracking_uri: TrackingUri = None,
    ray_address: RayAddress = None,
    cpus: Cpus = None,
    sweep_id: Annotated[
        str | None,
        typer.Option("--sweep-id", help="Use this id instead of a new one (`sweep submit` passes its own)."),
    ] = None,
) -> None:
    """Run a sweep: every trial on Ray Tune, every run in MLflow."""
    spec = _load(file, set_)
    if sweep_id is not None:
        _check_id(sweep_id)
    _run_and_render(spec, runs_dir, tracking_uri, ray_address, cpus, sweep_id=sweep_id, resume=False)


@app.command()
def resume(
    sweep_id: Annotated[str, typer.Argument(help="The id `sweep run` printed.")],
    runs_dir: RunsDir = Path("runs"),
    tracking_uri: TrackingUri = None,
    ray_address: RayAddress = None,
    cpus: Cpus = None,
) -> None:
    """Finish a sweep whose driver died or was stopped: trials that ended for good are kept.

    The spec comes from RUNS_DIR/SWEEP_ID/spec.yaml, else from the sweep's parent run in MLflow.
    """
    from sweep.sweep_dir import load_sweep_spec

    _check_id(sweep_id)
    try:
        spec = load_sweep_spec(sweep_id, runs_dir, tracking_uri)
    except SpecError as err:
        where = f"{err.source}: " if err.source else ""
        _fail([f"{where}{line}" for line in err.errors])
    _run_and_render(spec, runs_dir, tracking_uri, ray_address, cpus, sweep_id=sweep_id, resume=True)


def _check_id(sweep_id: str) -> None:
    from sweep.jobs import check_sweep_id

    try:
        check_sweep_id(sweep_id)
    except SpecError as err:
        _fail(err.errors)


def _run_and_render(
    spec: SweepSpec,
    runs_dir: Path,
    tracking_uri: str | None,
    ray_address: str | None,
    cpus: int | None,
    sweep_id: str | None,
    resume: bool,
) -> None:
    import logging

    from sweep.prefetch import prefetch

    # Before the imports below (Ray Tune, MLflow: seconds on one core): the data loads beside them.
    prefetched = None if resume else prefetch(spec)

    from sweep.cluster import ClusterError, cluster_address, stop_on_sigterm
    from sweep.data import DataError
    from sweep.recorder import TrialEvent
    from sweep.results import mlflow_run_url
    from sweep.runner import resume_sweep, run_sweep

    try:
        cluster_address(ray_address)
    except ClusterError as err:
        _fail([str(err)])
    stop_on_sigterm()

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # not "Creating initial database tables"

    console.print(f"[bold]{spec.name}[/bold]: {spec.trial_count} trials ({spec.describe_count()})")
    progress = _progress_display()
    task = progress.add_task("trials", total=spec.trial_count, failed=0, best="-")

    def on_event(event: TrialEvent) -> None:
        best = f"{event.best:.4f}" if event.best is not None else "-"
        progress.update(
            task, total=event.total, completed=event.done + event.failed, failed=event.failed, best=best
        )
        if event.error:
            label = "RETRYING" if event.status == "RETRYING" else "FAILED"
            progress.console.print(
                f"[yellow]{label}[/yellow] {escape(event.name)}: {escape(event.error)}", highlight=False
            )

    try:
        with progress:
            if resume and sweep_id:
                result = resume_sweep(sweep_id, runs_dir, tracking_uri, on_event, ray_address, ray_cpus=cpus)
            else:
                result = run_sweep(
                    spec,
                    runs_dir,
                    tracking_uri,
                    on_event,
                    ray_address,
                    sweep_id=sweep_id,
                    ray_cpus=cpus,
                    prefetched=prefetched,
                )
    except (DataError, ClusterError) as err:
        _fail([str(err)])
    except KeyboardInterrupt:
        _interrupted()
    except Exception as err:  # the sweep's runs are closed; show the cause, not a traceback
        if Settings().debug:
            raise
        _fail([f"sweep failed: {type(err).__name__}: {err}", "set SWEEP_DEBUG=1 for the traceback"], code=1)
    console.print(f"sweep id        {result.sweep_id}")
    console.print(f"parent run      {result.parent_run_id}")
    console.print(f"tracking uri    {result.tracking_uri}")
    link = mlflow_run_url(result.tracking_uri, result.experiment_id, result.parent_run_id)
    if link:
        console.print(f"mlflow          {link}", soft_wrap=True)
    console.print(
        f"state           {result.state}: {result.counts.get('finished', 0)} finished, "
        f"{result.counts.get('failed', 0)} failed in {result.wall_time_s:.1f} s"
    )
    if result.state == "interrupted":
        _interrupted(result.sweep_id)
    # The report already read the trial table back from MLflow; read it only if there was none.
    trials = result.trials
    if trials is None:
        trials = _read_trials(result.tracking_uri, result.sweep_id)
    table = _best_table(trials, spec.strategy.metric, spec.strategy.mode)
    if table is not None:
        console.print(table)
    if result.verdict:
        _print_answer(result.answer)
        console.print(f"report          {result.report_dir}/report.html (also on the parent run in MLflow)")
    elif result.report_error:
        errors.print(
            f"report not written ({escape(result.report_error)}); try `sweep report {result.sweep_id}`"
        )


def _interrupted(sweep_id: str | None = None) -> NoReturn:
    resume = f"`sweep resume {sweep_id}`" if sweep_id else "`sweep resume SWEEP_ID`"
    errors.print(f"interrupted: unfinished trials marked KILLED; {resume} continues the sweep")
    raise typer.Exit(130)


def _print_verdict(verdict: tuple[str, ...]) -> None:
    console.print("\n[bold]Verdict[/bold]")
    for sentence in verdict:
        console.print(f"  • {escape(sentence)}", highlight=False)


def _print_answer(answer: tuple[str, ...]) -> None:
    console.print("\n[bold]The answer[/bold] (the verdict in full and a forest plot: report.html)")
    for sentence in answer:
        console.print(f"  • {escape(sentence)}", highlight=False)


def _pct(value: float, digits: int = 1) -> str:
    return "n/a" if value != value else f"{100 * value:.{digits}f}"


def _render_analysis(analysis: Any) -> None:
    from sweep.analysis import format_interval, format_number, format_p

    table = Table(title="placements (accuracy in %, 95% CI over trials)")
    for col in (
        "placement",
        "trials",
        "failed",
        "final val acc",
        "95% CI",
        "best val acc",
        "val loss",
        "epochs to target (median)",
        "BN var. shift",
    ):
        table.add_column(col)
    for s in analysis.placements:
        est = s.final_val_accuracy
        table.add_row(
            s.placement,
            str(s.n_trials),
            f"{100 * s.failed_share:.0f}%",
            _pct(est.mean),
            format_interval(est, 100),
            _pct(s.best_val_accuracy.mean),
            format_number(s.final_val_loss.mean, 3),
            format_number(s.time_to_target.median, 0),
            format_number(s.bn_variance_shift.mean, 2),
        )
    console.print(table)
    if analysis.comparisons:
        against = "every pair" if analysis.reference == "all" else f"against {analysis.reference}"
        table = Table(title=f"paired comparisons, {against} (simultaneous 95% CI)")
        columns = ("placement", "reference", "Δ points", "95% CI", "pairs", "p (adjusted)", "d_z", "outcome")
        for col in columns:
            table.add_column(col)
        for c in analysis.comparisons:
            table.add_row(
                c.placement,
                c.reference,
                format_number(c.diff.mean, 2, signed=True),
                format_interval(c.diff, digits=2),
                str(c.n_pairs),
                format_p(c.p_adjusted),
                format_number(c.effect_size, 2),
                c.outcome,
            )
        console.print(table)
    table = Table(title="expectations from the literature (shared/EVIDENCE.md)")
    for col in ("#", "expectation", "status", "detail"):
        table.add_column(col)
    for e in analysis.expectations:
        table.add_row(str(e.id), e.title, e.status, escape(e.detail))
    console.print(table)
    _print_verdict(analysis.verdict)
    from sweep.report import short_answer

    _print_answer(short_answer(analysis))


@app.command()
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
        _fail(["give a SWEEP_ID, or --trials FILE.csv --spec SPEC.yaml --out DIR"])
    from mlflow.tracking import MlflowClient

    from sweep.publish import publish_report
    from sweep.results import SweepNotFound

    client = MlflowClient(_uri(runs_dir, tracking_uri))
    out_dir = out or runs_dir / sweep_id / "report"
    try:
        published = publish_report(client, sweep_id, out_dir, log=log)
    except SweepNotFound as err:
        _fail([str(err)])
    _render_analysis(published.analysis)
    console.print(
        f"\nwrote {published.files.markdown}, {published.files.html.name}, "
        f"{published.files.json.name} and {len(published.files.figures)} figures"
    )


def _report_table(
    sweep_id: str | None, trials: Path | None, spec_file: Path | None, curves: Path | None, out: Path | None
) -> None:
    if sweep_id is not None or trials is None or spec_file is None:
        _fail(["--trials FILE.csv needs --spec SPEC.yaml, and no SWEEP_ID"])
    from sweep.report.offline import report_trials_csv
    from sweep.report.trial_csv import TrialTableError

    spec = _load(spec_file)
    try:
        done = report_trials_csv(trials, spec, out or Path(f"{trials.stem}-report"), curves)
    except TrialTableError as err:
        _fail([f"{err.source}: {line}" for line in err.errors])
    except ValueError as err:  # a table the analysis cannot judge
        _fail([f"{trials}: {err}"])
    _render_analysis(done.analysis)
    console.print(f"\nwrote {done.files.markdown}, {done.files.html.name} and {done.files.json.name}")


@app.command()
def results(
    sweep_id: Annotated[str, typer.Argument(help="The sweep's id.")],
    runs_dir: RunsDir = Path("runs"),
    tracking_uri: TrackingUri = None,
    output: Annotated[
        Path | None, typer.Option("--csv", help="Also write the table to this CSV file.")
    ] = None,
) -> None:
    """Print a sweep's trial table, read back from MLflow."""
    from mlflow.tracking import MlflowClient

    from sweep.results import SweepNotFound, find_sweep, trial_table

    client = MlflowClient(_uri(runs_dir, tracking_uri))
    try:
        record = find_sweep(client, sweep_id)
    except SweepNotFound as err:
        _fail([str(err)])
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


@app.command()
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
        _fail([str(err)])
    except SpecError as err:
        where = f"{err.source}: " if err.source else ""
        _fail([f"{where}{line}" for line in err.errors])
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


@app.command("list")
def list_(runs_dir: RunsDir = Path("runs"), tracking_uri: TrackingUri = None) -> None:
    """List the sweeps in the tracking store, newest first."""
    from mlflow.tracking import MlflowClient

    from sweep.results import list_sweeps

    rows = [
        (str(s["sweep_id"]), str(s["state"]), str(s["trials"]), str(s["started"])[:19], s["parent_run_id"])
        for s in list_sweeps(MlflowClient(_uri(runs_dir, tracking_uri)))
    ]
    columns = ("sweep id", "state", "trials", "started (UTC)", "parent run")
    console.print(IdTable("sweeps", columns, rows, ids=("parent run",)))


@app.command()
def ui(
    runs_dir: RunsDir = Path("runs"),
    tracking_uri: TrackingUri = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
) -> None:
    """Open the MLflow UI on the sweeps' store (http://127.0.0.1:PORT)."""
    uri = _uri(runs_dir, tracking_uri)
    if not uri.startswith("sqlite:"):
        _fail([f"{uri} is a server already: open it in a browser"])
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
    from mlflow.tracking import MlflowClient

    from sweep.results import list_sweeps, mlflow_run_url

    here = f"http://127.0.0.1:{port}"
    console.print(f"MLflow UI on {here} (Ctrl-C stops it)")
    # The bare address opens MLflow's GenAI view; the link lands on the newest sweep's runs.
    for newest in list_sweeps(MlflowClient(uri), limit=1):
        link = mlflow_run_url(here, newest["experiment_id"], newest["parent_run_id"])
        console.print(f"newest sweep    {newest['sweep_id']}  {link}", soft_wrap=True)
    sys.stdout.flush()  # execv replaces the process before Python's buffers are written
    os.execv(sys.executable, args)


# --- Ray Jobs: a sweep on a cluster ------------------------------------------------------------


def _job_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from sweep.jobs import JobError

    try:
        return fn(*args, **kwargs)
    except JobError as err:
        _fail([str(err)], code=1)
    except SpecError as err:
        where = f"{err.source}: " if err.source else ""
        _fail([f"{where}{line}" for line in err.errors])


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(help="Spec file (YAML or JSON).")],
    address: JobsAddress,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a field: key.path=value.")] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow tracking URI for the job (default: the cluster's MLFLOW_TRACKING_URI, else "
            "the spec's); also read here by --follow.",
        ),
    ] = None,
    runs_dir: Annotated[
        str | None,
        typer.Option("--runs-dir", help="Runs folder on the cluster (default: its SWEEP_RUNS_DIR)."),
    ] = None,
    sweep_id: Annotated[
        str | None,
        typer.Option("--sweep-id", help="Submit under this id; submitting an id again launches nothing."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Show the sweep's progress until it ends.")
    ] = False,
) -> None:
    """Run a sweep as a Ray job on a cluster: the spec and its data file travel with it."""
    from sweep import jobs

    spec = _load(file, set_)  # every spec error, located, before anything reaches the cluster
    done = _job_call(
        jobs.submit,
        file,
        address=address,
        sweep_id=sweep_id,
        overrides=set_ or [],
        tracking_uri=tracking_uri,
        runs_dir=runs_dir,
    )
    console.print(f"sweep id        {done.sweep_id}")
    console.print(
        f"ray job         {done.submission_id}" + (" (already submitted)" if done.already_submitted else "")
    )
    console.print(f"jobs api        {done.address}")
    link = _experiment_link(Settings().named_tracking_uri(tracking_uri), spec.tracking.experiment)
    if link:
        console.print(f"mlflow          {link}", soft_wrap=True)
    console.print(f"next            sweep status {done.sweep_id} --address {done.address}", soft_wrap=True)
    if follow:
        _follow(done.sweep_id, address, tracking_uri)


def _experiment_link(uri: str | None, experiment: str) -> str | None:
    """The runs view of the sweep's experiment, when the tracking server answers from here."""
    if not uri or not uri.startswith(("http://", "https://")):
        return None
    from mlflow.tracking import MlflowClient

    from sweep.results import mlflow_experiment_url

    try:
        found = MlflowClient(uri).get_experiment_by_name(experiment)
    except Exception:  # not reachable from this machine: the job's own URI may differ
        return None
    return mlflow_experiment_url(uri, found.experiment_id) if found else None


def _follow(sweep_id: str, address: str, tracking_uri: str | None) -> None:
    """The job's progress as `sweep run` shows it, read from MLflow while the job runs."""
    from mlflow.tracking import MlflowClient

    from sweep import jobs
    from sweep.results import SweepNotFound, mlflow_run_url, sweep_progress

    uri = Settings().named_tracking_uri(tracking_uri)
    client = MlflowClient(uri) if uri else None
    progress = _progress_display()
    task = progress.add_task("trials", total=None, failed=0, best="-")
    shown: set[tuple[str, str]] = set()
    link = None
    last = None
    with progress:
        for job in _job_call(jobs.watch, sweep_id, address=address):
            last = job
            if client is None:
                continue
            try:
                now = sweep_progress(client, sweep_id)
            except SweepNotFound:
                continue
            except Exception as err:  # the tracking server may be away for a while: keep watching
                progress.console.print(f"[yellow]tracking[/yellow] {escape(str(err))[:200]}")
                continue
            if link is None:
                link = mlflow_run_url(client.tracking_uri, now.record.experiment_id, now.record.parent_run_id)
                if link:
                    progress.console.print(f"mlflow          {link}")
            best = f"{now.best:.4f}" if now.best is not None else "-"
            total = now.record.trials_total or None
            progress.update(
                task, total=total, completed=now.finished + now.failed, failed=now.failed, best=best
            )
            for failure in now.failures:
                if failure not in shown:
                    shown.add(failure)
                    progress.console.print(
                        f"[yellow]FAILED[/yellow] {escape(failure[0])}: {escape(failure[1])}"
                    )
    if last is None:
        return
    console.print(f"job             {last.status}" + (f": {last.message}" if last.message else ""))
    if last.status != "SUCCEEDED":
        raise typer.Exit(1)


@app.command()
def status(
    sweep_id: Annotated[str, typer.Argument(help="The id `sweep submit` printed.")],
    address: JobsAddress,
    tracking_uri: TrackingUri = None,
) -> None:
    """A submitted sweep: its Ray job's status, and its trials as MLflow has them."""
    from datetime import UTC, datetime

    from sweep import jobs

    _check_id(sweep_id)
    uri = Settings().named_tracking_uri(tracking_uri)
    job = _job_call(jobs.status, sweep_id, address=address, tracking_uri=uri)
    console.print(f"sweep id        {sweep_id}")
    console.print(
        f"ray job         {job.submission_id}: {job.status}" + (f" ({job.message})" if job.message else "")
    )
    if job.queued:
        console.print(f"queue           {_job_call(jobs.queue_line, sweep_id, address=address)}")
    for label, stamp in (("started", job.start_time), ("ended", job.end_time)):
        if stamp:
            console.print(f"{label:<15} {datetime.fromtimestamp(stamp, UTC):%Y-%m-%d %H:%M:%S} UTC")
    if not uri:
        return
    from mlflow.tracking import MlflowClient

    from sweep.results import SweepNotFound, mlflow_run_url, sweep_progress

    try:
        now = sweep_progress(MlflowClient(uri), sweep_id)
    except SweepNotFound:
        console.print(f"mlflow          no runs yet in {uri}")
        return
    console.print(
        f"trials          {now.finished} finished, {now.failed} failed, {now.running} running"
        f" of {now.record.trials_total}; sweep state {now.record.state}"
    )
    if now.best is not None:
        console.print(f"best so far     {now.best:.4f}")
    link = mlflow_run_url(uri, now.record.experiment_id, now.record.parent_run_id)
    console.print(f"parent run      {now.record.parent_run_id}" + (f"  {link}" if link else ""))


@app.command()
def cancel(
    sweep_id: Annotated[str, typer.Argument(help="The id `sweep submit` printed.")],
    address: JobsAddress,
) -> None:
    """Stop a submitted sweep gracefully: its open runs end KILLED, `sweep resume` can continue it."""
    from sweep import jobs

    _check_id(sweep_id)
    console.print(
        f"stopping {jobs.submission_id(sweep_id)} (SIGINT, then up to {jobs.STOP_WAIT_S} s to close its runs)"
    )
    job = _job_call(jobs.cancel, sweep_id, address=address, tracking_uri=Settings().named_tracking_uri(None))
    console.print(
        f"ray job         {job.submission_id}: {job.status}" + (" (was queued: never runs)" * job.queued)
    )
    if not job.finished and not job.queued:
        _fail([f"{job.submission_id} is still {job.status}"], code=1)


@app.command()
def logs(
    sweep_id: Annotated[str, typer.Argument(help="The id `sweep submit` printed.")],
    address: JobsAddress,
) -> None:
    """Print what a submitted sweep's driver has printed so far."""
    from sweep import jobs

    _check_id(sweep_id)
    text = _job_call(jobs.logs, sweep_id, address=address)
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


@app.command()
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
        _fail(list(err.args))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
