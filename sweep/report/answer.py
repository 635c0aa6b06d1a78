"""What the report says first: one short sentence per placement, and how the sweep was compared.

`short_answer` is the one source of the short answer: the report opens with it, `sweep run`
closes with it, and the sweep's parent run in MLflow carries it as its description.
"""

from __future__ import annotations

from collections.abc import Sequence

from sweep.analysis import Analysis, Comparison, Interaction, format_interval, format_number, metric_label
from sweep.analysis.formatting import format_nonzero

DEFAULT_TITLE = "Where does BatchNormalization go?"
SEQUENTIAL_NOTE = (
    "the sequential calls (Adaptive seeds) are the ones that keep the error rate over the repeated "
    "looks; the fixed-sample intervals shown elsewhere are descriptive."
)
_FLIPPED = {"better": "worse", "worse": "better"}


def short_answer(analysis: Analysis) -> tuple[str, ...]:
    """One sentence per placement: its outcome against the reference (or every other placement)."""
    label = metric_label(analysis.metric)
    if analysis.best_placement is None:
        return (f"No trial finished with a finite {label}; there is nothing to compare.",)
    if not analysis.comparisons:
        means = ", ".join(
            f"{s.placement} {format_number(s.metric.mean * 100)}%" for s in analysis.placements if s.metric.n
        )
        return (f"Nothing is compared (too few placements with usable trials); mean {label}: {means}.",)
    depends = {(i.placement, i.reference): i for i in analysis.interactions if i.depends}
    out = []
    for s in analysis.placements:
        if s.metric.n == 0:
            out.append(f"{s.placement}: no usable trial, so it is not compared.")
        elif analysis.reference == "all":
            out.append(_against_every_other(s.placement, analysis.comparisons, depends))
        elif s.placement == analysis.reference:
            out.append(
                f"{s.placement} is the reference ({format_number(s.metric.mean * 100)}% {label}, "
                f"n = {s.metric.n} seeds)."
            )
        else:
            c = next((c for c in analysis.comparisons if c.placement == s.placement), None)
            if c is not None:
                out.append(_against_reference(c, depends.get((c.placement, c.reference))))
    return tuple(out)


def _against_reference(c: Comparison, cells: Interaction | None) -> str:
    if cells is not None:
        return f"{c.placement} against {c.reference} depends on the cell: {cells.how()}."
    ci = _interval(c)
    if c.outcome in ("better", "worse"):
        # The size the interval guarantees (its end nearest 0), not the point estimate.
        size = format_nonzero(min(abs(c.diff.ci_low), abs(c.diff.ci_high)))
        return f"{c.placement} is {c.outcome} than {c.reference} by at least {size} points{ci}."
    if c.outcome == "equivalent":
        return f"{c.placement} is equivalent to {c.reference} within \u00b1{c.margin:g} point(s){ci}."
    seeds = f"; about {c.seeds_needed} seeds would tell" if c.seeds_needed is not None else ""
    return f"{c.placement}: this sweep cannot tell it from {c.reference}{ci}{seeds}."


def _interval(c: Comparison) -> str:
    delta = f"\u0394 {format_number(c.diff.mean, signed=True)}"
    if not c.diff.has_interval:
        return f" ({delta}, too few seeds for an interval)"
    return f" ({delta}, simultaneous 97.5% CI {format_interval(c.diff)})"


def _against_every_other(
    placement: str, comparisons: Sequence[Comparison], depends: dict[tuple[str, str], Interaction]
) -> str:
    """The placement's outcome against each other one, grouped by outcome, from its own side."""
    groups: dict[str, list[str]] = {}
    for c in comparisons:
        if placement not in (c.placement, c.reference):
            continue
        other = c.reference if c.placement == placement else c.placement
        if (c.placement, c.reference) in depends:
            outcome = "depends on the cell against"
        else:
            outcome = c.outcome if c.placement == placement else _FLIPPED.get(c.outcome, c.outcome)
        groups.setdefault(outcome, []).append(other)
    if not groups:
        return f"{placement}: not compared."
    words = {
        "better": "is better than",
        "worse": "is worse than",
        "equivalent": "is equivalent to",
        "cannot tell": "cannot be told from",
    }
    parts = [f"{words.get(o, o)} {_and(others)}" for o, others in groups.items()]
    return f"{placement} " + "; ".join(parts) + "."


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def overview(analysis: Analysis) -> str:
    """How the sweep was compared: trials, seeds, reference, metric, margin, intervals."""
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
        f"point(s); convergence target {target}. Accuracies are in percent: the mean of each "
        f"seed's mean, with 95% t-intervals over the seeds on the logit scale (none from fewer "
        f"than 3 seeds); differences are in percentage points "
        f"with intervals from the per-seed mean differences (the seed is the unit), simultaneous "
        f"so that every claim of the verdict together errs at most 5% of the time."
    )
    correlation = getattr(analysis, "intra_seed_correlation", None)
    if isinstance(correlation, float):
        text += f" Intra-seed correlation of the paired differences: {format_number(correlation, 2)}."
    families = getattr(analysis, "families", ())
    if families:
        text += " Claims that share the verdict's 5%: " + "; ".join(families) + "."
    if analysis.equal_length is not None:
        text += f" Compared at epoch {analysis.equal_length.epoch}, the length every trial reached."
    if analysis.adaptive is not None:
        text += f" Seeds were added adaptively: {SEQUENTIAL_NOTE}"
    return text
