"""The report's tables on BatchNormalization's own statistics: the variance shift dropout causes
in front of BN (Li et al. 2019) and what re-estimating those statistics without dropout recovers."""

from __future__ import annotations

from sweep.analysis import Analysis, Estimate, Recalibration, format_interval, format_number, metric_label
from sweep.report.table import Table


def variance_shift_table(analysis: Analysis) -> Table:
    return Table(
        "BN variance shift: moving variance / variance seen at test time",
        ("placement", "dropout", "geometric mean ratio", "95% CI", "seeds", "Li et al. predict"),
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
        "dropout feeds BN directly. The geometric mean and its log-scale interval are over the seeds' "
        "geometric means.",
    )


def recalibration_table(r: Recalibration) -> Table:
    """after_dropout's BN statistics re-estimated without dropout: the gain; the deficit before, after."""
    rows = [("after_dropout recalibrated \u2212 as trained", *_diff_cells(r.gain, "seeds"), "")]
    for name, c in (("as trained", r.deficit), ("recalibrated", r.recalibrated)):
        if c is not None:
            rows.append(
                (f"after_dropout ({name}) \u2212 {r.reference}", *_diff_cells(c.diff, "seeds"), c.outcome)
            )
    return Table(
        "BN statistics re-estimated without dropout "
        f"(after_dropout, dropout > 0, {metric_label(r.accuracy)})",
        ("difference", "\u0394 points", "interval", "n", "outcome"),
        tuple(rows),
        "The first row is a 95% t-interval over the seeds' mean gains of after_dropout's trials "
        "(seeds \u2212 1 df); the two rows against the reference share one Bonferroni-simultaneous "
        "family and the verdict's three-outcome rule. Every n counts seeds.",
    )


def _diff_cells(est: Estimate, unit: str) -> tuple[str, str, str]:
    return (format_number(est.mean, signed=True), format_interval(est), f"{est.n} {unit}")


def _predicted(expected: float | None, lower_bound: bool) -> str:
    if expected is None:
        return "\u2014"
    return f"\u2265 {format_number(expected, 2)}" if lower_bound else format_number(expected, 2)
