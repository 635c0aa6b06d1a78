"""Plots of a sweep and its analysis rendered as Markdown, self-contained HTML and JSON.

Figures are drawn on matplotlib's Agg canvas without pyplot, so nothing global changes and
no display is needed.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sweep.analysis import (
    Analysis,
    Estimate,
    Recalibration,
    format_interval,
    format_number,
    format_p,
    metric_label,
    placement_order,
    usable_trials,
)

DEFAULT_TITLE = "Where does BatchNormalization go?"
PLACEMENT_COLORS = {
    "before_activation": "#1f77b4",
    "after_activation": "#ff7f0e",
    "after_dropout": "#d62728",
    "none": "#7f7f7f",
}
_OTHER_COLORS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_DPI = 120


@dataclass(frozen=True)
class Plot:
    """One figure of the report: its file name, caption, and PNG bytes or why it is missing."""

    file: str
    caption: str
    png: bytes | None = None
    skipped: str | None = None


@dataclass(frozen=True)
class ReportFiles:
    """Paths of everything `write_report` wrote."""

    markdown: Path
    html: Path
    json: Path
    figures: tuple[Path, ...]  # the plots that had data


@dataclass(frozen=True)
class _Table:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


# --- plots -----------------------------------------------------------------------------------


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
    finished = trials.loc[trials["status"] == "FINISHED", ["run_id", "placement"]]
    data = curves.astype({"run_id": str}).merge(finished.astype({"run_id": str}), on="run_id")
    data = data[np.isfinite(pd.to_numeric(data["val_accuracy"], errors="coerce"))]
    if data.empty:
        return False
    fig = Figure(figsize=(8, 5), dpi=_DPI)
    ax = fig.add_subplot()
    for placement in placement_order(data["placement"].unique()):
        mine = data[data["placement"] == placement]
        rows = [
            (float(epoch), Estimate.of_accuracy(group["val_accuracy"].to_numpy(dtype=float)))
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
        "Validation accuracy per epoch\nline: mean over finished trials; band: 95% CI of the mean "
        "(logit scale, from 3 trials)"
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


# --- report ----------------------------------------------------------------------------------


def write_report(
    analysis: Analysis,
    trials: pd.DataFrame,
    curves: pd.DataFrame | None,
    out_dir: Path,
    title: str = DEFAULT_TITLE,
) -> ReportFiles:
    """Write the three plots, report.md, a self-contained report.html and analysis.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    label = metric_label(analysis.metric)
    drawers = (
        (
            "learning_curves.png",
            "Validation accuracy per epoch by placement",
            "no per-epoch curves were recorded for finished trials",
            lambda p: plot_learning_curves(trials, curves, p, analysis.target_accuracy),
        ),
        (
            "final_accuracy.png",
            f"{label.capitalize()} per placement",
            f"no finished trial has a finite {label}",
            lambda p: plot_final_accuracy(trials, p, analysis.metric),
        ),
        (
            "placement_dropout.png",
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
        json.dumps(analysis.to_dict(), indent=2, allow_nan=False, ensure_ascii=False),
        encoding="utf-8",
    )
    return files


def render_markdown(analysis: Analysis, title: str = DEFAULT_TITLE, plots: Sequence[Plot] = ()) -> str:
    """The report as Markdown: verdict first, then the tables, then links to the plots."""
    lines = [f"# {title}", "", _overview(analysis), "", "## Verdict", ""]
    lines += [f"- {sentence}" for sentence in analysis.verdict]
    for table in _tables(analysis):
        lines += ["", f"## {table.title}", ""]
        lines.append("| " + " | ".join(_md_cell(h) for h in table.headers) + " |")
        lines.append("|" + "|".join("---" for _ in table.headers) + "|")
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
        if table.note:
            lines += ["", table.note]
    if plots:
        lines += ["", "## Figures", ""]
        for plot in plots:
            if plot.skipped:
                lines.append(f"- {plot.caption}: skipped, {plot.skipped}.")
            else:
                lines += [f"![{plot.caption}]({plot.file})", ""]
    return "\n".join(lines).rstrip() + "\n"


def render_html(analysis: Analysis, title: str = DEFAULT_TITLE, plots: Sequence[Plot] = ()) -> str:
    """The report as one HTML page with its plots embedded as data URIs."""
    e = html.escape
    body = [
        f"<h1>{e(title)}</h1>",
        f"<p class='overview'>{e(_overview(analysis))}</p>",
        "<h2>Verdict</h2>",
        "<ul class='verdict'>",
    ]
    body += [f"<li>{e(sentence)}</li>" for sentence in analysis.verdict]
    body.append("</ul>")
    for table in _tables(analysis):
        body.append(f"<h2>{e(table.title)}</h2>")
        body.append(
            "<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in table.headers) + "</tr></thead><tbody>"
        )
        for row in table.rows:
            body.append("<tr>" + "".join(_html_cell(c) for c in row) + "</tr>")
        body.append("</tbody></table>")
        if table.note:
            body.append(f"<p class='note'>{e(table.note)}</p>")
    if plots:
        body.append("<h2>Figures</h2>")
    for plot in plots:
        if plot.png is None:
            body.append(f"<p class='note'>{e(plot.caption)}: skipped, {e(plot.skipped or '')}.</p>")
            continue
        data = base64.b64encode(plot.png).decode("ascii")
        body.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{e(plot.caption)}">'
            f"<figcaption>{e(plot.caption)}</figcaption></figure>"
        )
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>{e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.verdict li { margin-bottom: 0.3rem; }
.note, .overview { color: #555; }
.status { font-weight: 600; padding: 0.05rem 0.4rem; border-radius: 0.3rem; white-space: nowrap; }
.confirmed, .better { background: #d8f0d8; } .refuted, .worse { background: #f6d5d5; }
.cannot-tell { background: #fbecc8; } .not-tested { background: #e8e8e8; }
.equivalent { background: #d8e6f6; }
figure { margin: 1rem 0; } img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9rem; }
"""
_BADGES = {"confirmed", "refuted", "cannot tell", "not tested", "better", "worse", "equivalent"}


def _html_cell(text: str) -> str:
    if text in _BADGES:
        css = text.replace(" ", "-")
        return f"<td><span class='status {css}'>{html.escape(text)}</span></td>"
    return f"<td>{html.escape(text)}</td>"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _overview(analysis: Analysis) -> str:
    target = f"{format_number(analysis.target_accuracy * 100, 0)}% validation accuracy" + (
        " (default: 95% of the best mean, rounded down)" if analysis.target_is_default else ""
    )
    compared = (
        "every pair of placements"
        if analysis.reference == "all"
        else f"each placement against {analysis.reference} (declared in advance)"
    )
    own = analysis.own_settings
    if own is not None:
        compared += (
            f", compared at each placement's own best settings (re-run on {own.n_seeds} fresh "
            f"seeds; the {own.n_tuning} tuning trials that chose them are not compared)"
        )
    text = (
        f"{analysis.n_trials} trials over {analysis.n_seeds} seed(s); {compared} on "
        f"{metric_label(analysis.metric)}, equivalent within \u00b1{analysis.equivalence_margin:g} "
        f"point(s); convergence target {target}. Accuracies are in percent with 95% t-intervals "
        f"on the logit scale (none from fewer than 3 trials); differences are in percentage points "
        f"with Bonferroni-simultaneous 95% intervals."
    )
    if analysis.equal_length is not None:
        text += f" Compared at epoch {analysis.equal_length.epoch}, the length every trial reached."
    if analysis.adaptive is not None:
        text += f" Seeds were added adaptively: {_SEQUENTIAL_NOTE}"
    return text


_SEQUENTIAL_NOTE = (
    "the sequential calls (Adaptive seeds) are the ones that keep the error rate over the repeated "
    "looks; the fixed-sample intervals shown elsewhere are descriptive."
)


def _pct(est: Estimate) -> str:
    if est.n == 0:
        return "n/a"
    sd = f" \u00b1 {format_number(est.std * 100)}" if est.n >= 2 else ""
    return f"{format_number(est.mean * 100)}{sd}"


def _median(x: float) -> str:
    return format_number(x, 0) if math.isfinite(x) else "not reached"


def _tables(analysis: Analysis) -> list[_Table]:
    label = metric_label(analysis.metric)
    horizon = next((s.time_to_target.horizon for s in analysis.placements if s.time_to_target.n), math.nan)
    # The verdict's accuracy beside the validation one when they differ (test accuracy).
    extra_headers: tuple[str, ...] = ()
    if analysis.metric != "final_val_accuracy":
        extra_headers = (f"{label} % (mean \u00b1 sd)", "95% CI ")
    tables = [
        _Table(
            "Per placement",
            (
                "placement",
                "trials",
                "finished",
                "failed or diverged",
                "final val acc % (mean \u00b1 sd)",
                "95% CI",
                *extra_headers,
                "best val acc % (mean)",
                "final val loss (mean)",
                "epochs to target (median)",
                f"restricted mean epochs (of {format_number(horizon, 0)})",
                "reached target",
                "BN variance ratio (geometric mean)",
            ),
            tuple(
                (
                    s.placement,
                    str(s.n_trials),
                    str(s.n_finished),
                    f"{format_number(s.failed_share * 100, 0)}%",
                    _pct(s.final_val_accuracy),
                    format_interval(s.final_val_accuracy, 100),
                    *((_pct(s.metric), format_interval(s.metric, 100)) if extra_headers else ()),
                    format_number(s.best_val_accuracy.mean * 100),
                    format_number(s.final_val_loss.mean, 3),
                    _median(s.time_to_target.median) if s.time_to_target.n else "n/a",
                    format_number(s.time_to_target.restricted_mean),
                    f"{s.time_to_target.n_reached}/{s.time_to_target.n}" if s.time_to_target.n else "n/a",
                    format_number(s.bn_variance_shift.mean, 2),
                )
                for s in analysis.placements
            ),
            "Failed or diverged: not FINISHED, or a non-finite metric or loss; such trials are left "
            "out of every other column. Epochs to target: Kaplan\u2013Meier, a trial that never "
            "reached the target censored at its last epoch; the restricted mean counts it as the "
            "last epoch observed.",
        )
    ]
    if analysis.own_settings is not None:
        tables.append(_own_settings_table(analysis))
    if analysis.adaptive is not None:
        tables.append(_adaptive_table(analysis))
    if analysis.comparisons:
        matched = (
            "seed alone (each placement at its own settings)"
            if analysis.own_settings is not None
            else "dropout, optimizer and seed"
        )
        title = (
            "Paired comparisons, every pair"
            if analysis.reference == "all"
            else f"Paired comparisons against {analysis.reference} (declared in advance)"
        )
        tables.append(
            _Table(
                title,
                (
                    "placement",
                    "reference",
                    "\u0394 points",
                    "simultaneous 95% CI",
                    "pairs",
                    "seeds",
                    "p (paired t)",
                    "p (Bonferroni)",
                    "d_z",
                    "outcome",
                    "seeds to resolve",
                ),
                tuple(
                    (
                        c.placement,
                        c.reference,
                        format_number(c.diff.mean, signed=True),
                        format_interval(c.diff).replace("trials", "pairs"),
                        str(c.n_pairs),
                        str(c.n_seeds),
                        format_p(c.p_value),
                        format_p(c.p_adjusted),
                        format_number(c.effect_size, 2),
                        c.outcome,
                        str(c.seeds_needed) if c.seeds_needed is not None else "n/a",
                    )
                    for c in analysis.comparisons
                ),
                f"\u0394 = placement \u2212 reference in points of {label}, matched on {matched}. "
                f"The intervals hold together with 95% confidence (Bonferroni: "
                f"each at 1 \u2212 0.05/k over the k testable comparisons), and every outcome is read "
                f"off them: equivalent when the interval lies inside "
                f"\u00b1{analysis.equivalence_margin:g}, worse or better when it lies wholly below "
                f"or above 0, cannot tell otherwise (also with fewer than 3 pairs). Seeds to resolve: "
                f"for 80% power against a {analysis.equivalence_margin:g}-point difference.",
            )
        )
    if analysis.interactions:
        tables += _interaction_tables(analysis)
    for means in analysis.cell_means:
        table = means.table
        levels = list(table.columns)
        winners = dict(means.winners)
        rows = [
            (str(p), *(_cell_pct(table.loc[p, lvl], means.counts.loc[p, lvl]) for lvl in levels))
            for p in table.index
        ]
        rows.append(("highest mean", *(winners.get(lvl, "n/a") for lvl in levels)))
        tables.append(
            _Table(
                f"Mean {label} (%) by placement \u00d7 {means.factor}",
                ("placement", *(_level_header(lvl) for lvl in levels)),
                tuple(rows),
                means.note or "The same placement has the highest mean at every level.",
            )
        )
    if analysis.best_dropout:
        tables.append(
            _Table(
                "Best dropout with and without BN",
                ("group", "best dropout", f"mean {label} %", "trials"),
                tuple(
                    (b.group, f"{b.dropout:g}", format_number(b.mean * 100), str(b.n))
                    for b in analysis.best_dropout
                ),
            )
        )
    if analysis.variance_shift:
        tables.append(
            _Table(
                "BN variance shift: moving variance / variance seen at test time",
                ("placement", "dropout", "geometric mean ratio", "95% CI", "trials", "Li et al. predict"),
                tuple(
                    (
                        v.placement,
                        f"{v.dropout:g}",
                        format_number(v.ratio.mean, 2),
                        format_interval(v.ratio, digits=2),
                        str(v.ratio.n),
                        _predicted(v.expected, v.expected_is_lower_bound),
                    )
                    for v in analysis.variance_shift
                ),
                "Li et al. 2019 (arXiv:1801.05134): dropout with keep rate p in front of BN gives "
                "1/p + (1/p \u2212 1)\u00b7c\u00b2/v for an input of mean c and variance v; without "
                "the measured means only its least value, 1/(1\u2212rate), is known. Only where "
                "dropout feeds BN directly.",
            )
        )
    if analysis.recalibration is not None:
        tables.append(_recalibration_table(analysis.recalibration))
    tables.append(
        _Table(
            "Expectations (EVIDENCE.md)",
            ("#", "expectation", "status", "detail"),
            tuple((str(x.id), x.title, x.status, x.detail) for x in analysis.expectations),
        )
    )
    return tables


def _recalibration_table(r: Recalibration) -> _Table:
    """after_dropout's BN statistics re-estimated without dropout: the gain; the deficit before, after."""
    rows = [("after_dropout recalibrated \u2212 as trained", *_diff_cells(r.gain, "trials"), "")]
    for name, c in (("as trained", r.deficit), ("recalibrated", r.recalibrated)):
        if c is not None:
            rows.append(
                (f"after_dropout ({name}) \u2212 {r.reference}", *_diff_cells(c.diff, "pairs"), c.outcome)
            )
    return _Table(
        "BN statistics re-estimated without dropout "
        f"(after_dropout, dropout > 0, {metric_label(r.accuracy)})",
        ("difference", "\u0394 points", "interval", "n", "outcome"),
        tuple(rows),
        "The first row is a plain 95% t-interval over after_dropout's trials; the two rows against "
        "the reference share one Bonferroni-simultaneous family and the verdict's three-outcome rule.",
    )


def _diff_cells(est: Estimate, unit: str) -> tuple[str, str, str]:
    return (format_number(est.mean, signed=True), format_interval(est), f"{est.n} {unit}")


def _own_settings_table(analysis: Analysis) -> _Table:
    own = analysis.own_settings
    assert own is not None
    return _Table(
        "Settings each placement chose (per-placement tuning)",
        ("placement", "dropout", "optimizer", "tuning trials", "tuning mean %", "re-runs"),
        tuple(
            (
                b.placement,
                f"{b.dropout:g}",
                b.optimizer,
                str(b.tuning_trials),
                format_number(b.tuning_value * 100),
                str(b.confirmation_trials),
            )
            for b in own.blocks
        ),
        f"Each placement was tuned on its own (one seed per setting) and its best setting re-run on "
        f"{own.n_seeds} fresh seeds; only the re-runs are compared, paired by seed. The tuning mean "
        f"picked the winner, so it is optimistic.",
    )


def _adaptive_table(analysis: Analysis) -> _Table:
    adaptive = analysis.adaptive
    assert adaptive is not None
    counts = []
    if adaptive.trials_run is not None:
        counts.append(f"{adaptive.trials_run} trials run")
    if adaptive.trials_saved is not None:
        counts.append(f"{adaptive.trials_saved} saved against running the maximum seeds everywhere")
    ran = f"{', '.join(counts)}. " if counts else ""
    return _Table(
        "Adaptive seeds",
        ("placement", "reference", "sequential call", "at the last look"),
        tuple((c.placement, c.reference, c.outcome, c.text) for c in adaptive.calls),
        f"{ran}Seeds were added only while a comparison was undecided, each look at its share of "
        f"the error rate (alpha spending, sweep/adaptive.py): {_SEQUENTIAL_NOTE}",
    )


def _interaction_tables(analysis: Analysis) -> list[_Table]:
    label = metric_label(analysis.metric)
    tests = _Table(
        "Does the placement effect depend on dropout and optimizer?",
        ("placement", "reference", "cells", "pairs", "F (df)", "p", "p (Bonferroni)", "depends"),
        tuple(
            (
                i.placement,
                i.reference,
                str(i.n_cells),
                str(i.n_pairs),
                f"{format_number(i.f_value, 2)} ({i.df_cells}, {i.df_resid})",
                format_p(i.p_value),
                format_p(i.p_adjusted),
                "yes" if i.depends else ("not shown" if math.isfinite(i.p_adjusted) else "not testable"),
            )
            for i in analysis.interactions
        ),
        "Per comparison, an OLS F-test of the paired differences on their dropout \u00d7 optimizer "
        "cell against one mean for all cells, Bonferroni-adjusted over the comparisons tested. "
        "Where it depends, the verdict and the tables below give the outcome per cell instead of "
        "one overall \u0394.",
    )
    out = [tests]
    for i in analysis.interactions:
        if not i.depends:
            continue
        out.append(
            _Table(
                f"{i.placement} \u2212 {i.reference} by dropout \u00d7 optimizer",
                ("dropout", "optimizer", "\u0394 points", "simultaneous 95% CI", "pairs", "outcome"),
                tuple(
                    (
                        f"{c.dropout:g}",
                        c.optimizer,
                        format_number(c.diff.mean, signed=True),
                        format_interval(c.diff).replace("trials", "pairs"),
                        str(c.diff.n),
                        c.outcome,
                    )
                    for c in i.cells
                ),
                f"\u0394 in points of {label}. Each interval is a t-interval from the model's pooled "
                f"residual SD, simultaneous over every cell of every tested comparison (Bonferroni), "
                f"and read by the verdict's rule: equivalent inside "
                f"\u00b1{analysis.equivalence_margin:g}, worse or better wholly below or above 0.",
            )
        )
    return out


def _predicted(expected: float | None, lower_bound: bool) -> str:
    if expected is None:
        return "\u2014"
    return f"\u2265 {format_number(expected, 2)}" if lower_bound else format_number(expected, 2)


def _cell_pct(value: float, count: int) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{format_number(value * 100)} (n = {count})"


def _level_header(level: object) -> str:
    return f"{level:g}" if isinstance(level, float | np.floating) else str(level)
