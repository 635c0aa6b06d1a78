"""A report from files alone: a trial table (CSV) and the spec it was run from; no Ray, no MLflow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sweep.analysis import Analysis, adaptive_seeds, analyse
from sweep.report.answer import DEFAULT_TITLE
from sweep.report.files import ReportFiles, write_report
from sweep.report.trial_csv import read_curves_csv, read_trials_csv
from sweep.spec import SweepSpec


@dataclass(frozen=True)
class TableReport:
    """The analysis of a trial table and the files written for it."""

    analysis: Analysis
    files: ReportFiles
    trials: pd.DataFrame


def report_trials_csv(
    trials_csv: str | Path, spec: SweepSpec, out_dir: str | Path, curves_csv: str | Path | None = None
) -> TableReport:
    """Analyse the trials in `trials_csv` as the sweep of `spec` would be, and write its report.

    The spec gives the placements and optimizers the table may hold, the analysis settings and
    the convergence target. `curves_csv` (run_id, epoch, val_accuracy, ...) adds what the curves
    give: the learning-curve plot, epochs to target, and comparison at the epoch all trials reached.
    Raises TrialTableError for a table it cannot read, ValueError for one it cannot judge.
    """
    search = spec.search
    trials = read_trials_csv(trials_csv, search.placement, list(search.optimizers), curves_csv is not None)
    curves = None if curves_csv is None else read_curves_csv(curves_csv, trials["run_id"])
    # An adaptive sweep looked at its data repeatedly: its calls are on the parent run, not in the
    # table, but the report must still say that the fixed-sample intervals are descriptive.
    adaptive = None
    if search.adaptive is not None:
        adaptive = adaptive_seeds({}, {"adaptive.trials_run": float(len(trials))})
    analysis = analyse(
        trials,
        curves,
        target_accuracy=spec.training.target_accuracy,
        reference=spec.analysis.reference,
        equivalence_margin=spec.analysis.equivalence_margin,
        adaptive=adaptive,
        split_per_seed=spec.dataset.split_per_seed,
    )
    title = f"{DEFAULT_TITLE} \u2014 {spec.name} ({Path(trials_csv).name})"
    files = write_report(analysis, trials, curves, Path(out_dir), title=title)
    return TableReport(analysis, files, trials)
