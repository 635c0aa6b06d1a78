"""`write_report`: the figures, report.md, a self-contained report.html and analysis.json in one folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sweep.analysis import Analysis, metric_label
from sweep.report.answer import DEFAULT_TITLE, short_answer
from sweep.report.html import render_html
from sweep.report.markdown import render_markdown
from sweep.report.plots import (
    BOXES_PNG,
    CURVES_PNG,
    FOREST_PNG,
    HEATMAP_PNG,
    Plot,
    plot_final_accuracy,
    plot_forest,
    plot_heatmap,
    plot_learning_curves,
)


@dataclass(frozen=True)
class ReportFiles:
    """Paths of everything `write_report` wrote."""

    markdown: Path
    html: Path
    json: Path
    figures: tuple[Path, ...]  # the plots that had data


def write_report(
    analysis: Analysis,
    trials: pd.DataFrame,
    curves: pd.DataFrame | None,
    out_dir: Path,
    title: str = DEFAULT_TITLE,
) -> ReportFiles:
    """Write the plots, report.md, a self-contained report.html and analysis.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    label = metric_label(analysis.metric)
    drawers: tuple[tuple[str, str, str, Callable[[Path], bool]], ...] = (
        (
            FOREST_PNG,
            "Each comparison's \u0394 and simultaneous 97.5% interval against the equivalence margin",
            "no placements were compared",
            lambda p: plot_forest(analysis, p),
        ),
        (
            CURVES_PNG,
            "Validation accuracy per epoch by placement",
            "no per-epoch curves were recorded for finished trials",
            lambda p: plot_learning_curves(trials, curves, p, analysis.target_accuracy),
        ),
        (
            BOXES_PNG,
            f"{label.capitalize()} per placement",
            f"no finished trial has a finite {label}",
            lambda p: plot_final_accuracy(trials, p, analysis.metric),
        ),
        (
            HEATMAP_PNG,
            f"Mean {label} by placement and dropout",
            f"no finished trial has a finite {label}",
            lambda p: plot_heatmap(trials, p, analysis.metric),
        ),
    )
    plots, written = [], []
    for file, caption, reason, draw in drawers:
        path = out_dir / file
        if draw(path):
            written.append(path)
            plots.append(Plot(file, caption, png=path.read_bytes()))
        else:
            path.unlink(missing_ok=True)  # a stale figure from an earlier run would mislead
            plots.append(Plot(file, caption, skipped=reason))

    files = ReportFiles(
        out_dir / "report.md", out_dir / "report.html", out_dir / "analysis.json", tuple(written)
    )
    files.markdown.write_text(render_markdown(analysis, title, plots), encoding="utf-8")
    files.html.write_text(render_html(analysis, title, plots), encoding="utf-8")
    files.json.write_text(
        json.dumps(analysis_json(analysis), indent=2, allow_nan=False, ensure_ascii=False), encoding="utf-8"
    )
    return files


def analysis_json(analysis: Analysis) -> dict[str, Any]:
    """The analysis as plain data, with the short answer and every comparison's and cell's outcome
    gathered under `outcomes` (the same values as in `comparisons` and `interactions`)."""
    data = analysis.to_dict()
    data["answer"] = list(short_answer(analysis))
    data["outcomes"] = {
        "comparisons": [
            {"placement": c.placement, "reference": c.reference, "outcome": c.outcome}
            for c in analysis.comparisons
        ],
        "cells": [
            {
                "placement": i.placement,
                "reference": i.reference,
                "dropout": cell.dropout,
                "optimizer": cell.optimizer,
                "outcome": cell.outcome,
                "effect_depends_on_cell": i.depends,
            }
            for i in analysis.interactions
            for cell in i.cells
        ],
    }
    return data
