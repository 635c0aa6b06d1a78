"""The report of an analysis: the short answer, plots, tables, Markdown, self-contained HTML and JSON.

One module a concern: `answer` (what the report says first), `plots`, `tables`, `markdown`, `html`,
`files` (writing them all), `trial_csv` (a trial table read from a CSV file, checked) and
`offline` (`sweep report --trials`: CSV and spec in, report out). Nothing here imports Ray, MLflow
or TensorFlow.
"""

from sweep.report.answer import DEFAULT_TITLE, overview, short_answer
from sweep.report.files import ReportFiles, analysis_json, write_report
from sweep.report.html import render_html
from sweep.report.markdown import render_markdown
from sweep.report.offline import TableReport, report_trials_csv
from sweep.report.plots import (
    PLACEMENT_COLORS,
    Plot,
    forest_rows,
    plot_final_accuracy,
    plot_forest,
    plot_heatmap,
    plot_learning_curves,
)
from sweep.report.tables import Table, tables
from sweep.report.trial_csv import TrialTableError, read_curves_csv, read_trials_csv

__all__ = [
    "DEFAULT_TITLE",
    "PLACEMENT_COLORS",
    "Plot",
    "ReportFiles",
    "Table",
    "TableReport",
    "TrialTableError",
    "analysis_json",
    "forest_rows",
    "overview",
    "plot_final_accuracy",
    "plot_forest",
    "plot_heatmap",
    "plot_learning_curves",
    "read_curves_csv",
    "read_trials_csv",
    "render_html",
    "render_markdown",
    "report_trials_csv",
    "short_answer",
    "tables",
    "write_report",
]
