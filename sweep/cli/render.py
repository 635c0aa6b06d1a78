"""What the commands print with rich: tables that keep ids whole, the analysis, the verdict, progress."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.table import Table

from sweep.cli.root import console

if TYPE_CHECKING:
    import pandas as pd


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


def best_table(trials: pd.DataFrame, metric: str, mode: str, limit: int = 5) -> IdTable | None:
    """The `limit` best finished trials by `metric`, run ids whole; None when none finished."""
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


def progress_display() -> Any:
    """The live line `sweep run` and `sweep submit --follow` keep: trials done, failed, best so far."""
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


def print_verdict(verdict: tuple[str, ...]) -> None:
    console.print("\n[bold]Verdict[/bold]")
    for sentence in verdict:
        console.print(f"  • {escape(sentence)}", highlight=False)


def print_answer(answer: tuple[str, ...]) -> None:
    console.print("\n[bold]The answer[/bold] (the verdict in full and a forest plot: report.html)")
    for sentence in answer:
        console.print(f"  • {escape(sentence)}", highlight=False)


def pct(value: float, digits: int = 1) -> str:
    """`value` as a percentage, "n/a" for NaN."""
    return "n/a" if value != value else f"{100 * value:.{digits}f}"


def render_analysis(analysis: Any) -> None:
    """An analysis as `sweep report` prints it: placements, comparisons, expectations, verdict, answer."""
    console.print(_placements_table(analysis))
    if analysis.comparisons:
        console.print(_comparisons_table(analysis))
    console.print(_expectations_table(analysis))
    print_verdict(analysis.verdict)
    from sweep.report import short_answer

    print_answer(short_answer(analysis))


def _placements_table(analysis: Any) -> Table:
    from sweep.analysis import format_interval, format_number

    table = Table(title="placements (accuracy in %, 95% CI over seeds)")
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
            pct(est.mean),
            format_interval(est, 100),
            pct(s.best_val_accuracy.mean),
            format_number(s.final_val_loss.mean, 3),
            format_number(s.time_to_target.median, 0),
            format_number(s.bn_variance_shift.mean, 2),
        )
    return table


def _comparisons_table(analysis: Any) -> Table:
    from sweep.analysis import format_interval, format_number, format_p

    against = "every pair" if analysis.reference == "all" else f"against {analysis.reference}"
    table = Table(title=f"paired comparisons, {against} (simultaneous 97.5% CI)")
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
    return table


def _expectations_table(analysis: Any) -> Table:
    table = Table(title="expectations from the literature (shared/EVIDENCE.md)")
    for col in ("#", "expectation", "status", "detail"):
        table.add_column(col)
    for e in analysis.expectations:
        table.add_row(str(e.id), e.title, e.status, escape(e.detail))
    return table
