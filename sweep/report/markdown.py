"""The report as Markdown: the short answer and the forest plot first, then the verdict and the detail."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sweep.analysis import Analysis
from sweep.report.answer import DEFAULT_TITLE, overview, short_answer
from sweep.report.plots import FOREST_PNG, Plot
from sweep.report.tables import Table, arrange, tables


def render_markdown(analysis: Analysis, title: str = DEFAULT_TITLE, plots: Sequence[Plot] = ()) -> str:
    """The report as Markdown; `plots` are linked by file name beside the tables they illustrate."""
    forest = [p for p in plots if p.file == FOREST_PNG]
    lines = [f"# {title}", "", "## The answer", ""]
    lines += [f"- {sentence}" for sentence in short_answer(analysis)]
    lines += ["", *_figures(forest), overview(analysis), "", "## Verdict", ""]
    lines += [f"- {sentence}" for sentence in analysis.verdict]
    sections = tables(analysis)
    beside, rest = arrange(sections, [p for p in plots if p.file != FOREST_PNG])
    for table, figures in zip(sections, beside, strict=True):
        lines += ["", *_table(table), *_figures(figures)]
    if rest:
        lines += ["", "## Figures", "", *_figures(rest)]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).rstrip() + "\n"


def _table(table: Table) -> list[str]:
    lines = [f"## {table.title}", ""]
    lines.append("| " + " | ".join(_cell(h) for h in table.headers) + " |")
    lines.append("|" + "|".join("---" for _ in table.headers) + "|")
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    if table.note:
        lines += ["", table.note]
    return lines


def _figures(plots: Sequence[Plot]) -> list[str]:
    lines = [""] if plots else []
    for plot in plots:
        if plot.skipped:
            lines += [f"- {plot.caption}: skipped, {plot.skipped}.", ""]
        else:
            lines += [f"![{plot.caption}]({plot.file})", ""]
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
