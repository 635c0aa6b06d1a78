"""The report's figures, drawn on matplotlib's Agg canvas without pyplot.

Nothing global changes and no display is needed. Each `plot_*` writes a PNG and returns False,
writing nothing, when its data is missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sweep.analysis import (
    Analysis,
    Estimate,
    format_number,
    metric_label,
    placement_order,
    usable_trials,
)

PLACEMENT_COLORS = {
    "before_activation": "#1f77b4",
    "after_activation": "#ff7f0e",
    "after_dropout": "#d62728",
    "none": "#7f7f7f",
}
OUTCOME_COLORS = {"better": "#2e7d32", "worse": "#c62828", "equivalent": "#1565c0", "cannot tell": "#8d6e00"}
_OTHER_COLORS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_DPI = 120
FOREST_PNG = "forest.png"
CURVES_PNG = "learning_curves.png"
BOXES_PNG = "final_accuracy.png"
HEATMAP_PNG = "placement_dropout.png"


@dataclass(frozen=True)
class Plot:
    """One figure of the report: its file name, caption, and PNG bytes or why it is missing."""

    file: str
    caption: str
    png: bytes | None = None
    skipped: str | None = None


def plot_learning_curves(
    trials: pd.DataFrame,
    curves: pd.DataFrame | None,
    path: Path,
    target_accuracy: float | None = None,
) -> bool:
    """Mean validation accuracy per epoch and placement, with a 95% CI band; False if no data."""
    needed = {"run_id", "epoch", "val_accuracy"}
    if curves is None or curves.empty or not needed <= set(curves.columns):
        return False
    finished = trials.loc[trials["status"] == "FINISHED", ["run_id", "placement", "seed"]]
    data = curves[sorted(needed)].astype({"run_id": str}).merge(finished.astype({"run_id": str}), on="run_id")
    data = data[np.isfinite(pd.to_numeric(data["val_accuracy"], errors="coerce"))]
    if data.empty:
        return False
    fig = Figure(figsize=(8, 5), dpi=_DPI)
    ax = fig.add_subplot()
    for placement in placement_order(data["placement"].unique()):
        mine = data[data["placement"] == placement]
        rows = [
            (float(epoch), Estimate.of_accuracy(group["val_accuracy"], seeds=group["seed"]))
            for epoch, group in mine.groupby("epoch")
        ]
        epochs = np.array([e for e, _ in rows])
        mean = np.array([est.mean for _, est in rows]) * 100
        low = np.array([est.ci_low for _, est in rows]) * 100
        high = np.array([est.ci_high for _, est in rows]) * 100
        color = _color(placement)
        n = mine["run_id"].nunique()
        ax.plot(epochs, mean, color=color, linewidth=2, label=f"{placement} (n = {n})")
        ax.fill_between(epochs, low, high, color=color, alpha=0.2, linewidth=0)
    if target_accuracy is not None and math.isfinite(target_accuracy):
        ax.axhline(
            target_accuracy * 100,
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"target {format_number(target_accuracy * 100, 0)}%",
        )
    ax.set_title(
        "Validation accuracy per epoch\nline: mean of the seeds' means; band: its 95% CI over "
        "seeds (logit scale, from 3 seeds)"
    )
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", title="placement")
    _save(fig, path)
    return True


def plot_final_accuracy(trials: pd.DataFrame, path: Path, metric: str = "final_val_accuracy") -> bool:
    """A box per placement with every usable trial as a jittered dot; False if no data."""
    usable = usable_trials(trials, metric)
    if usable.empty:
        return False
    order = placement_order(usable["placement"].unique())
    fig = Figure(figsize=(8, 5), dpi=_DPI)
    ax = fig.add_subplot()
    values = [usable.loc[usable["placement"] == p, metric].to_numpy(dtype=float) * 100 for p in order]
    box = ax.boxplot(
        values,
        positions=range(1, len(order) + 1),
        widths=0.5,
        showfliers=False,
        patch_artist=True,
        medianprops={"color": "black"},
    )
    rng = np.random.default_rng(0)  # fixed jitter: the same table draws the same figure
    for i, (placement, ys) in enumerate(zip(order, values, strict=True), start=1):
        box["boxes"][i - 1].set(facecolor=_color(placement), alpha=0.3)
        xs = i + rng.uniform(-0.15, 0.15, len(ys))
        ax.scatter(xs, ys, s=18, color=_color(placement), edgecolor="black", linewidth=0.4, zorder=3)
    labels = []
    for placement, ys in zip(order, values, strict=True):
        failed = int((trials["placement"] == placement).sum()) - len(ys)
        extra = f", {failed} failed" if failed else ""
        labels.append(f"{placement}\n(n = {len(ys)}{extra})")
    ax.set_xticks(range(1, len(order) + 1), labels)
    label = metric_label(metric)
    ax.set_title(
        f"{label.capitalize()} per placement\nbox: quartiles and median; dots: one per finished trial"
    )
    ax.set_xlabel("BatchNormalization placement")
    ax.set_ylabel(f"{label} (%)")
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)
    return True


def plot_heatmap(trials: pd.DataFrame, path: Path, metric: str = "final_val_accuracy") -> bool:
    """Mean metric (%) per placement and dropout rate, annotated cells; False if no data."""
    usable = usable_trials(trials, metric)
    if usable.empty:
        return False
    table = usable.pivot_table(index="placement", columns="dropout", values=metric, aggfunc="mean") * 100
    table = table.reindex(placement_order(table.index))
    values = table.to_numpy(dtype=float)
    fig = Figure(figsize=(1.6 + 1.3 * table.shape[1], 1.4 + 0.7 * table.shape[0]), dpi=_DPI)
    fig.set_size_inches(max(6.0, fig.get_figwidth()), max(3.5, fig.get_figheight()))
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    finite = values[np.isfinite(values)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for (row, col), value in np.ndenumerate(values):
        if math.isfinite(value):
            ax.text(
                col,
                row,
                f"{value:.1f}",
                ha="center",
                va="center",
                fontsize=10,
                color="black" if value > middle else "white",
            )
    ax.set_xticks(range(table.shape[1]), [f"{d:g}" for d in table.columns])
    ax.set_yticks(range(table.shape[0]), list(table.index))
    ax.set_xlabel("dropout rate")
    ax.set_ylabel("placement")
    label = metric_label(metric)
    ax.set_title(f"Mean {label} (%) by placement and dropout")
    fig.colorbar(image, ax=ax, label=f"mean {label} (%)")
    _save(fig, path)
    return True


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, format="png")


def _color(placement: str) -> str:
    if placement in PLACEMENT_COLORS:
        return PLACEMENT_COLORS[placement]
    return _OTHER_COLORS[sum(map(ord, placement)) % len(_OTHER_COLORS)]


@dataclass(frozen=True)
class ForestRow:
    """One line of the forest plot: a comparison, or one cell of a comparison that depends on it."""

    label: str
    diff: Estimate  # points; the simultaneous interval the outcome was read off
    outcome: str


def forest_rows(analysis: Analysis) -> list[ForestRow]:
    """Each comparison's Δ, or its cells' where the effect depends on the dropout × optimizer cell."""
    depends = {(i.placement, i.reference): i for i in analysis.interactions if i.depends}
    rows = []
    for c in analysis.comparisons:
        name = f"{c.placement} \u2212 {c.reference}"
        found = depends.get((c.placement, c.reference))
        if found is None:
            rows.append(ForestRow(name, c.diff, c.outcome))
            continue
        rows += [
            ForestRow(f"{name}: dropout {cell.dropout:g}, {cell.optimizer}", cell.diff, cell.outcome)
            for cell in found.cells
        ]
    return rows


def plot_forest(analysis: Analysis, path: Path) -> bool:
    """Each comparison's Δ and simultaneous interval against the ±margin band; False if none."""
    rows = forest_rows(analysis)
    if not rows:
        return False
    margin = analysis.equivalence_margin
    fig = Figure(figsize=(8, 1.8 + 0.42 * len(rows)), dpi=_DPI)
    ax = fig.add_subplot()
    ax.axvspan(-margin, margin, color=OUTCOME_COLORS["equivalent"], alpha=0.12, linewidth=0)
    ax.axvline(0, color="black", linewidth=0.8)
    ends = [-1.5 * margin, 1.5 * margin]
    for y, row in zip(range(len(rows) - 1, -1, -1), rows, strict=True):
        color = OUTCOME_COLORS.get(row.outcome, "black")
        d = row.diff
        if d.has_interval:
            ax.plot([d.ci_low, d.ci_high], [y, y], color=color, linewidth=2.5, solid_capstyle="butt")
            ends += [d.ci_low, d.ci_high]
        if math.isfinite(d.mean):
            ax.scatter([d.mean], [y], color=color, s=40, zorder=3, marker="o" if d.has_interval else "x")
            ends.append(d.mean)
        note = row.outcome if d.has_interval else f"{row.outcome} (too few for an interval)"
        ax.annotate(
            note, xy=(1.02, y), xycoords=("axes fraction", "data"), va="center", color=color, fontsize=9
        )
    ax.set_yticks(range(len(rows) - 1, -1, -1), [r.label for r in rows])
    ax.set_ylim(-0.7, len(rows) - 0.3)
    pad = 0.05 * (max(ends) - min(ends))
    ax.set_xlim(min(ends) - pad, max(ends) + pad)
    ax.set_xlabel(f"\u0394, points of {metric_label(analysis.metric)} (placement \u2212 reference)")
    ax.set_title(
        "The answer: each difference with its simultaneous 97.5% interval\n"
        f"shaded: equivalent within \u00b1{margin:g} point(s); colour: the outcome read off the interval",
        fontsize=10,
    )
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(path, format="png", bbox_inches="tight")  # keeps the outcome notes right of the axes
    return True
