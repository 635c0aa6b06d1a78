"""Whether a placement's effect depends on dropout and optimizer, and if so how, cell by cell.

The data, one comparison at a time: its paired differences (placement - reference in points), one
per dropout x optimizer cell and seed. Within one cell every value comes from another seed, so a
cell's values are independent; across cells one seed's values are correlated (comparisons.py).

- The test, "is the mean difference the same in every cell?", is Welch's heteroskedastic one-way
  ANOVA of the differences on their cell (Welch 1951; statsmodels' `anova_oneway(use_var=
  "unequal")` gives the same F and p, `welch_f_test` computes them in closed form). Each cell's
  mean is weighted by its own variance, so one noisy cell neither hides nor fakes an effect. A seed
  effect shared by the cells cancels from the contrasts between them yet enlarges each cell's
  variance, so correlation within seeds makes the test conservative, never liberal.
- One term per cell, not C(dropout) + C(optimizer): the additive model misses an effect that only
  one combination shows (worse only with sgd at high dropout).
- Each cell's interval is a t-interval from that cell's own seeds (its SD, n_c - 1 degrees of
  freedom), so it holds whatever the other cells' variances are.

Alpha discipline: the interaction tests and the cell claims share ALPHA_CELLS (comparisons.py), as
a gate. A comparison's cells are printed only when its interaction test (Bonferroni over the k
comparisons tested at ALPHA_CELLS) finds a dependence; the cell intervals are simultaneous at
1 - ALPHA_CELLS/m over the m cells of every tested comparison. Where the effect truly does not
depend on the cell, the only possible error is the false dependence (at most ALPHA_CELLS over
those comparisons); where it does, only a false cell claim (at most ALPHA_CELLS over the cells).
So this half of the verdict errs with probability at most ALPHA_CELLS, and with the overall
comparisons' ALPHA_OVERALL the whole printed verdict at most ALPHA (docs/statistics.md, with the
rates measured on simulated sweeps in tests/unit/test_analysis_calibration.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special
from statsmodels.stats.multitest import multipletests

from sweep.analysis.comparisons import ALPHA_CELLS, Outcome, classify, paired
from sweep.analysis.estimate import Estimate
from sweep.analysis.formatting import format_number

CELL_KEYS = ("dropout", "optimizer")
_OUTCOME_ORDER: tuple[Outcome, ...] = ("worse", "better", "equivalent", "cannot tell")


@dataclass(frozen=True)
class CellEffect:
    """One dropout x optimizer cell of a comparison: its mean paired difference and outcome."""

    dropout: float
    optimizer: str
    # Points over the cell's seeds; `std` is the cell's own SD, the interval simultaneous over every cell.
    diff: Estimate
    outcome: Outcome


@dataclass(frozen=True)
class Interaction:
    """Whether `placement - reference` differs between dropout x optimizer cells."""

    placement: str
    reference: str
    n_pairs: int
    n_cells: int
    f_value: float  # Welch's F; NaN when not testable (fewer than 2 cells of 2 seeds with spread)
    df_cells: int  # numerator degrees of freedom: cells tested - 1
    df_resid: float  # Welch's denominator degrees of freedom (not a whole number)
    p_value: float
    p_adjusted: float  # Bonferroni over `family`
    family: int  # comparisons whose interaction was tested together
    depends: bool  # p_adjusted < ALPHA_CELLS: the effect differs between cells
    cells: tuple[CellEffect, ...]
    alpha: float = ALPHA_CELLS  # shared by the interaction tests and the cell claims they gate

    def how(self) -> str:
        """The cells' outcomes in words, e.g. "worse at dropout >= 0.5, equivalent at dropout 0.1"."""
        return describe_cells(self.cells)


@dataclass(frozen=True)
class _Fit:
    y: np.ndarray  # the paired differences
    codes: np.ndarray  # each one's cell, an index into `levels`
    levels: list[tuple[float, str]]  # (dropout, optimizer)
    f_value: float
    df_cells: int
    df_resid: float
    p_value: float


def interactions(
    groups: Sequence[tuple[pd.DataFrame, str, str]], metric: str, margin: float
) -> tuple[Interaction, ...]:
    """For each (trials, placement, reference) with two or more cells, its interaction test and cells."""
    named = [(p, ref, paired(data, p, ref, metric)[0]) for data, p, ref in groups]
    return interaction_family(named, margin)


def interaction_family(named: Sequence[tuple[str, str, pd.Series]], margin: float) -> tuple[Interaction, ...]:
    """The tests and cell statements of one family of paired differences, each indexed by
    (dropout, optimizer, seed); comparisons with fewer than two cells are left out."""
    fits = [(p, ref, fit) for p, ref, diffs in named if (fit := _fit(diffs)) is not None]
    testable = [i for i, (_, _, fit) in enumerate(fits) if math.isfinite(fit.p_value)]
    p_adj = np.full(len(fits), math.nan)
    if testable:
        raw = [fits[i][2].p_value for i in testable]
        p_adj[testable] = multipletests(raw, alpha=ALPHA_CELLS, method="bonferroni")[1]
    m = sum(len(fits[i][2].levels) for i in testable)
    level = 1 - ALPHA_CELLS / max(1, m)
    out = []
    for i, (placement, reference, fit) in enumerate(fits):
        out.append(
            Interaction(
                placement=placement,
                reference=reference,
                n_pairs=len(fit.y),
                n_cells=len(fit.levels),
                f_value=fit.f_value,
                df_cells=fit.df_cells,
                df_resid=round(fit.df_resid, 1) if math.isfinite(fit.df_resid) else fit.df_resid,
                p_value=fit.p_value,
                p_adjusted=float(p_adj[i]),
                family=len(testable),
                depends=bool(p_adj[i] < ALPHA_CELLS),
                cells=_cells(fit, level, margin),
            )
        )
    return tuple(out)


def _fit(diffs: pd.Series) -> _Fit | None:
    """Welch's test of the differences across their cells; None with fewer than two cells."""
    diffs = diffs.dropna()
    cells = list(zip(*(diffs.index.get_level_values(k) for k in CELL_KEYS), strict=True))
    levels = sorted(set(cells))
    if len(levels) < 2:
        return None
    index = {cell: i for i, cell in enumerate(levels)}
    codes = np.array([index[c] for c in cells])
    y = diffs.to_numpy(dtype=float)
    f_value, df_cells, df_resid, p_value = welch_f_test(y, codes, len(levels))
    return _Fit(y, codes, levels, f_value, df_cells, df_resid, p_value)


def welch_f_test(y: np.ndarray, codes: np.ndarray, k: int) -> tuple[float, int, float, float]:
    """Welch's F, its degrees of freedom and p over the cells with 2+ values and some spread.

    statsmodels' anova_oneway(use_var="unequal") as a formula, without its per-call overhead,
    which the null simulations in the tests would pay thousands of times; NaN when fewer than two
    cells qualify.
    """
    counts = np.bincount(codes, minlength=k).astype(float)
    means = np.bincount(codes, weights=y, minlength=k) / np.maximum(counts, 1)
    ss = np.bincount(codes, weights=(y - means[codes]) ** 2, minlength=k)
    var = ss / np.maximum(counts - 1, 1)
    ok = (counts >= 2) & (var > 1e-12)
    g = int(ok.sum())
    if g < 2:
        return math.nan, max(0, g - 1), math.nan, math.nan
    n, m, v = counts[ok], means[ok], var[ok]
    w = n / v
    total = float(w.sum())
    centre = float(np.sum(w * m)) / total
    between = float(np.sum(w * (m - centre) ** 2)) / (g - 1)
    tmp = float(np.sum((1 - w / total) ** 2 / (n - 1)))
    f_value = between / (1 + 2 * (g - 2) * tmp / (g * g - 1))
    df_resid = (g * g - 1) / (3 * tmp)
    return f_value, g - 1, df_resid, float(special.fdtrc(g - 1, df_resid, f_value))


def _cells(fit: _Fit, level: float, margin: float) -> tuple[CellEffect, ...]:
    """Each cell's mean with a t-interval from its own seeds at `level`, and the outcome it gives."""
    out = []
    for code, (dropout, optimizer) in enumerate(fit.levels):
        values = fit.y[fit.codes == code]
        est = Estimate.of(values, level)  # no interval under MIN_SEEDS seeds
        out.append(CellEffect(float(dropout), str(optimizer), est, classify(est, margin)))
    return tuple(out)


def describe_cells(cells: Sequence[CellEffect]) -> str:
    """Outcomes by cell, said by dropout alone or optimizer alone where that is all they vary with."""
    outcomes = {(c.dropout, c.optimizer): c.outcome for c in cells}
    dropouts = sorted({d for d, _ in outcomes})
    optimizers = list(dict.fromkeys(o for _, o in outcomes))
    if len(set(outcomes.values())) == 1:
        only = next(iter(outcomes.values()))
        means = [c.diff.mean for c in cells]
        spread = f"{format_number(min(means), signed=True)} to {format_number(max(means), signed=True)}"
        return f"{only} in every cell, by different amounts (\u0394 {spread} points)"
    by_dropout = _single(outcomes, 0)
    by_optimizer = _single(outcomes, 1)
    groups: dict[Outcome, list[str]] = {}
    if by_dropout is not None and len(dropouts) > 1:
        for outcome, levels in _grouped(by_dropout, dropouts):
            groups[outcome] = [_dropout_text(levels, dropouts)]
    elif by_optimizer is not None and len(optimizers) > 1:
        for outcome, levels in _grouped(by_optimizer, optimizers):
            groups[outcome] = ["with " + _and(levels)]
    else:
        for c in sorted(cells, key=lambda c: (c.dropout, optimizers.index(c.optimizer))):
            groups.setdefault(c.outcome, []).append(f"at dropout {c.dropout:g} with {c.optimizer}")
    parts = [f"{o} {_and(groups[o])}" for o in _OUTCOME_ORDER if o in groups]
    return ", ".join(parts) if len(parts) < 3 else "; ".join(parts)


def _single(outcomes: dict[tuple[float, str], Outcome], axis: int) -> dict[object, Outcome] | None:
    """Outcome per level of one axis, or None when it varies within a level (the other axis matters)."""
    seen: dict[object, set[Outcome]] = {}
    for key, outcome in outcomes.items():
        seen.setdefault(key[axis], set()).add(outcome)
    if any(len(v) > 1 for v in seen.values()):
        return None
    return {level: next(iter(v)) for level, v in seen.items()}


def _grouped(per_level: dict[object, Outcome], order: Sequence[object]) -> list[tuple[Outcome, list]]:
    groups: dict[Outcome, list] = {}
    for level in order:
        groups.setdefault(per_level[level], []).append(level)
    return list(groups.items())


def _dropout_text(levels: list, every: list) -> str:
    """ "at dropout >= 0.5" for two or more top levels, "<= 0.25" for bottom ones, else the list."""
    if 2 <= len(levels) < len(every):
        if levels == every[-len(levels) :]:
            return f"at dropout \u2265 {levels[0]:g}"
        if levels == every[: len(levels)]:
            return f"at dropout \u2264 {levels[-1]:g}"
    return "at dropout " + _and([f"{d:g}" for d in levels])


def _and(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
