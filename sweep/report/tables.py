"""The report's tables: one builder per section, each a title, headers, rows and a note.

Markdown and HTML render the same `Table`s; `figures` names the plots drawn beside a table. The
tables on BN's own statistics are `bn_tables`'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from sweep.analysis import (
    Analysis,
    CellMeans,
    Comparison,
    Estimate,
    format_interval,
    format_number,
    format_p,
    metric_label,
)
from sweep.analysis.rates import matched_on
from sweep.report.answer import SEQUENTIAL_NOTE
from sweep.report.bn_tables import recalibration_table, variance_shift_table
from sweep.report.plots import BOXES_PNG, CURVES_PNG, HEATMAP_PNG, Plot
from sweep.report.table import Table


def arrange(sections: Sequence[Table], plots: Sequence[Plot]) -> tuple[list[list[Plot]], list[Plot]]:
    """The plots each table shows after itself, and the ones no table claims (shown at the end)."""
    by_file = {p.file: p for p in plots}
    beside = [[by_file.pop(f) for f in t.figures if f in by_file] for t in sections]
    return beside, list(by_file.values())


def tables(analysis: Analysis) -> list[Table]:
    """Every table of the report, in reading order."""
    out = [placements_table(analysis)]
    if analysis.own_settings is not None:
        out.append(_own_settings_table(analysis))
    if analysis.adaptive is not None:
        out.append(_adaptive_table(analysis))
    if analysis.comparisons:
        out.append(comparisons_table(analysis))
    if analysis.interactions:
        out += _interaction_tables(analysis)
    out += [_cell_means_table(analysis, means) for means in analysis.cell_means]
    if analysis.best_dropout:
        out.append(_best_dropout_table(analysis))
    if analysis.best_rates:
        out.append(_best_rate_table(analysis))
    if analysis.variance_shift:
        out.append(variance_shift_table(analysis))
    if analysis.recalibration is not None:
        out.append(recalibration_table(analysis.recalibration))
    out.append(
        Table(
            "Expectations (EVIDENCE.md)",
            ("#", "expectation", "status", "detail"),
            tuple((str(x.id), x.title, x.status, x.detail) for x in analysis.expectations),
        )
    )
    return out


def placements_table(analysis: Analysis) -> Table:
    """Per placement: trials, failures, accuracies, loss, time to target, BN variance ratio."""
    horizon = next((s.time_to_target.horizon for s in analysis.placements if s.time_to_target.n), math.nan)
    # The verdict's accuracy beside the validation one when they differ (test accuracy).
    extra_headers: tuple[str, ...] = ()
    if analysis.metric != "final_val_accuracy":
        extra_headers = (f"{metric_label(analysis.metric)} % (mean \u00b1 sd of seed means)", "95% CI ")
    headers = (
        "placement",
        "trials",
        "finished",
        "failed or diverged",
        "final val acc % (mean \u00b1 sd of seed means)",
        "95% CI",
        *extra_headers,
        "best val acc % (mean)",
        "final val loss (mean)",
        "epochs to target (median)",
        f"restricted mean epochs (of {format_number(horizon, 0)})",
        "reached target",
        "BN variance ratio (geometric mean)",
    )
    rows = tuple(
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
    )
    note = (
        "Failed or diverged: not FINISHED, or a non-finite metric or loss; such trials are left "
        "out of every other column. Accuracies, loss and variance ratio: each seed's trials are "
        "averaged first, and the mean, SD and 95% CI (logit scale, none from fewer than 3 seeds) "
        "are over those seed means, as the trials of one seed share its initial weights, batch "
        "order and evaluation rows. Epochs to target: Kaplan\u2013Meier, a trial that never "
        "reached the target censored at its last epoch; the restricted mean counts it as the "
        "last epoch observed."
    )
    return Table("Per placement", headers, rows, note, figures=(BOXES_PNG, CURVES_PNG))


def comparisons_table(analysis: Analysis) -> Table:
    """The paired comparisons: Δ, simultaneous interval, counts, p-values and outcome."""
    label = metric_label(analysis.metric)
    matched = (
        "seed alone (each placement at its own settings)"
        if analysis.own_settings is not None
        else matched_on(bool(analysis.best_rates))
    )
    title = (
        "Paired comparisons, every pair"
        if analysis.reference == "all"
        else f"Paired comparisons against {analysis.reference} (declared in advance)"
    )
    # Reported by newer analyses only: shown when the comparisons carry it.
    correlated = any(_finite(getattr(c, "intra_seed_correlation", None)) for c in analysis.comparisons)
    headers = (
        "placement",
        "reference",
        "\u0394 points",
        "simultaneous 97.5% CI",
        "pairs",
        "seeds",
        *(("intra-seed correlation",) if correlated else ()),
        "p (paired t)",
        "p (Bonferroni)",
        "d_z",
        "outcome",
        "seeds to resolve",
    )
    rows = tuple(_comparison_row(c, correlated) for c in analysis.comparisons)
    note = (
        f"\u0394 = placement \u2212 reference in points of {label}, matched on {matched}. "
        f"Each interval is a t-interval over the seeds' mean differences (seeds \u2212 1 df); together "
        f"they hold with 97.5% confidence (Bonferroni: each at 1 \u2212 0.025/k over the k testable "
        f"comparisons; the other 2.5% goes to the per-cell claims), and every outcome is read "
        f"off them: equivalent when the interval lies inside "
        f"\u00b1{analysis.equivalence_margin:g}, worse or better when it lies wholly below "
        f"or above 0, cannot tell otherwise (also with fewer than 3 seeds). Seeds to resolve: "
        f"for 80% power against a {analysis.equivalence_margin:g}-point difference, for the "
        f"comparisons this sweep cannot tell."
    )
    return Table(title, headers, rows, note)


def _comparison_row(c: Comparison, correlated: bool) -> tuple[str, ...]:
    correlation = getattr(c, "intra_seed_correlation", None)
    return (
        c.placement,
        c.reference,
        format_number(c.diff.mean, signed=True),
        format_interval(c.diff),
        str(c.n_pairs),
        str(c.n_seeds),
        *((format_number(correlation, 2) if _finite(correlation) else "n/a",) if correlated else ()),
        format_p(c.p_value),
        format_p(c.p_adjusted),
        format_number(c.effect_size, 2),
        c.outcome,
        _seeds_to_resolve(c),
    )


def _seeds_to_resolve(c: Comparison) -> str:
    """Only an undecided comparison has seeds left to resolve it."""
    if c.outcome != "cannot tell":
        return "decided"
    return str(c.seeds_needed) if c.seeds_needed is not None else "n/a"


def _finite(x: object) -> bool:
    return isinstance(x, float | int) and math.isfinite(x)


def _cell_means_table(analysis: Analysis, means: CellMeans) -> Table:
    table = means.table
    levels = list(table.columns)
    winners = dict(means.winners)
    rows = [
        (str(p), *(_cell_pct(table.loc[p, lvl], means.counts.loc[p, lvl]) for lvl in levels))
        for p in table.index
    ]
    rows.append(("highest mean", *(winners.get(lvl, "n/a") for lvl in levels)))
    return Table(
        f"Mean {metric_label(analysis.metric)} (%) by placement \u00d7 {means.factor}",
        ("placement", *(_level_header(lvl) for lvl in levels)),
        tuple(rows),
        means.note or "The same placement has the highest mean at every level.",
        figures=(HEATMAP_PNG,) if means.factor == "dropout" else (),
    )


def _best_dropout_table(analysis: Analysis) -> Table:
    return Table(
        "Best dropout with and without BN",
        ("group", "best dropout", f"mean {metric_label(analysis.metric)} %", "trials"),
        tuple(
            (b.group, f"{b.dropout:g}", format_number(b.mean * 100), str(b.n)) for b in analysis.best_dropout
        ),
    )


def _best_rate_table(analysis: Analysis) -> Table:
    return Table(
        "Best learning rate per placement (rates drawn per block)",
        (
            "placement",
            "best rate",
            "optimizer",
            "dropout",
            f"mean {metric_label(analysis.metric)} %",
            "trials",
            "blocks",
            "rates tried",
        ),
        tuple(
            (
                b.placement,
                f"{b.learning_rate:.4g}",
                b.optimizer,
                f"{b.dropout:g}",
                format_number(b.mean * 100),
                str(b.n),
                str(b.blocks),
                f"{b.lowest_rate:.4g} to {b.highest_rate:.4g}",
            )
            for b in analysis.best_rates
        ),
        "The block (dropout, optimizer, drawn rate) with each placement's highest mean over its seeds; "
        "every placement ran every block, so a placement whose best rate is higher tolerated it better "
        "here. Descriptive: the comparisons above pair placements within blocks.",
    )


def _pct(est: Estimate) -> str:
    if est.n == 0:
        return "n/a"
    sd = f" \u00b1 {format_number(est.std * 100)}" if est.n >= 2 else ""
    return f"{format_number(est.mean * 100)}{sd}"


def _median(x: float) -> str:
    return format_number(x, 0) if math.isfinite(x) else "not reached"


def _own_settings_table(analysis: Analysis) -> Table:
    own = analysis.own_settings
    assert own is not None
    return Table(
        "Settings each placement chose (per-placement tuning)",
        ("placement", "dropout", "optimizer", "learning rate", "tuning trials", "tuning mean %", "re-runs"),
        tuple(
            (
                b.placement,
                f"{b.dropout:g}",
                b.optimizer,
                f"{b.learning_rate:.4g}" if b.learning_rate else "n/a",
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


def _adaptive_table(analysis: Analysis) -> Table:
    adaptive = analysis.adaptive
    assert adaptive is not None
    counts = []
    if adaptive.trials_run is not None:
        counts.append(f"{adaptive.trials_run} trials run")
    if adaptive.trials_saved is not None:
        counts.append(f"{adaptive.trials_saved} saved against running the maximum seeds everywhere")
    ran = f"{', '.join(counts)}. " if counts else ""
    missing = (
        ""
        if adaptive.calls
        else " The calls are recorded on the sweep's parent run in MLflow, not in a trial table: "
        "`sweep report SWEEP_ID` shows them."
    )
    return Table(
        "Adaptive seeds",
        ("placement", "reference", "sequential call", "at the last look"),
        tuple((c.placement, c.reference, c.outcome, c.text) for c in adaptive.calls),
        f"{ran}Seeds were added only while a comparison was undecided, each look at its share of "
        f"the error rate (alpha spending, sweep/adaptive.py): {SEQUENTIAL_NOTE}{missing}",
    )


def _interaction_tables(analysis: Analysis) -> list[Table]:
    label = metric_label(analysis.metric)
    tests = Table(
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
        "Per comparison, Welch's F-test (unequal cell variances) of the paired differences on their "
        "dropout \u00d7 optimizer cell against one mean for all cells, Bonferroni-adjusted over the "
        "comparisons tested within the 2.5% the interaction tests and per-cell claims share. "
        "Where it depends, the verdict and the tables below give the outcome per cell instead of "
        "one overall \u0394.",
    )
    out = [tests]
    for i in analysis.interactions:
        if not i.depends:
            continue
        out.append(
            Table(
                f"{i.placement} \u2212 {i.reference} by dropout \u00d7 optimizer",
                ("dropout", "optimizer", "\u0394 points", "simultaneous 97.5% CI", "pairs", "outcome"),
                tuple(
                    (
                        f"{c.dropout:g}",
                        c.optimizer,
                        format_number(c.diff.mean, signed=True),
                        format_interval(c.diff),
                        str(c.diff.n),
                        c.outcome,
                    )
                    for c in i.cells
                ),
                f"\u0394 in points of {label}. Each interval is a t-interval from that cell's own seeds, "
                f"simultaneous over every cell of every tested comparison (Bonferroni), "
                f"and read by the verdict's rule: equivalent inside "
                f"\u00b1{analysis.equivalence_margin:g}, worse or better wholly below or above 0.",
            )
        )
    return out


def _cell_pct(value: float, count: int) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{format_number(value * 100)} (n = {count})"


def _level_header(level: object) -> str:
    return f"{level:g}" if isinstance(level, float | np.floating) else str(level)
