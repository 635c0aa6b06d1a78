"""Whether a placement's effect depends on dropout and optimizer, and if so how, cell by cell.

The model, one per comparison: its paired differences (placement - reference in points, one per
dropout x optimizer x seed) regressed by OLS on their cell, y = mu_cell + e. The interaction test
is that regression's F-test of the cell terms against the intercept-only model y = mu + e: is the
mean difference the same in every cell? (statsmodels' OLS gives the same F and p; `cell_f_test`
computes them in closed form.) Why this model:

- Pairing already removed what the two placements share in a cell and seed (the cell's level, the
  seed's initial weights and batch order), so what is left to test is the placement x cell
  interaction itself; an ANOVA of raw accuracies would test the same contrast with more nuisance
  terms to fit.
- One term per cell, not C(dropout) + C(optimizer): the additive model misses an effect that only
  one combination shows (worse only with sgd at high dropout), and the per-cell statements need
  the cell means anyway, so the test and the statements rest on one model.
- No seed term: each seed enters every cell once, so a seed effect shared by the cells cancels
  from the contrasts between them and only widens the residual (conservative), while a few-seed
  sweep keeps its degrees of freedom. A mixed model with a seed variance is not estimable from 3 seeds.
- Equal variance in every cell, as the F-test assumes; the per-cell intervals use the same pooled
  residual SD, so they agree with the test.

Alpha discipline as in comparisons.py: the F-tests are Bonferroni-adjusted over the comparisons
tested, and an interaction is claimed when the adjusted p < ALPHA. Each cell's interval is a
t-interval (pooled SD, residual degrees of freedom) at 1 - ALPHA/m over the m cells of every tested
comparison, so all cell statements hold together, and `classify` reads each one's outcome; cells of
fewer than MIN_PAIRS pairs get none. The null false-interaction rate is checked by simulation in
tests/unit/test_analysis_interactions.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special
from statsmodels.stats.multitest import multipletests

from sweep.analysis.comparisons import ALPHA, MIN_PAIRS, Outcome, classify, paired
from sweep.analysis.estimate import Estimate
from sweep.analysis.formatting import format_number

CELL_KEYS = ("dropout", "optimizer")
_OUTCOME_ORDER: tuple[Outcome, ...] = ("worse", "better", "equivalent", "cannot tell")


@dataclass(frozen=True)
class CellEffect:
    """One dropout x optimizer cell of a comparison: its mean paired difference and outcome."""

    dropout: float
    optimizer: str
    # Points; `std` is the model's pooled residual SD, the interval simultaneous over every cell.
    diff: Estimate
    outcome: Outcome


@dataclass(frozen=True)
class Interaction:
    """Whether `placement - reference` differs between dropout x optimizer cells."""

    placement: str
    reference: str
    n_pairs: int
    n_cells: int
    f_value: float  # NaN when not testable (one cell, no residual degrees of freedom or spread)
    df_cells: int  # numerator degrees of freedom: cells - 1
    df_resid: int
    p_value: float
    p_adjusted: float  # Bonferroni over `family`
    family: int  # comparisons whose interaction was tested together
    depends: bool  # p_adjusted < ALPHA: the effect differs between cells
    cells: tuple[CellEffect, ...]

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
    df_resid: int
    p_value: float
    scale: float  # pooled residual variance; NaN when not testable


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
        p_adj[testable] = multipletests(raw, alpha=ALPHA, method="bonferroni")[1]
    m = sum(len(fits[i][2].levels) for i in testable)
    level = 1 - ALPHA / max(1, m)
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
                df_resid=fit.df_resid,
                p_value=fit.p_value,
                p_adjusted=float(p_adj[i]),
                family=len(testable),
                depends=bool(p_adj[i] < ALPHA),
                cells=_cells(fit, level, margin),
            )
        )
    return tuple(out)


def _fit(diffs: pd.Series) -> _Fit | None:
    """OLS of the differences on their cell; None with fewer than two cells."""
    diffs = diffs.dropna()
    cells = list(zip(*(diffs.index.get_level_values(k) for k in CELL_KEYS), strict=True))
    levels = sorted(set(cells))
    if len(levels) < 2:
        return None
    index = {cell: i for i, cell in enumerate(levels)}
    codes = np.array([index[c] for c in cells])
    y = diffs.to_numpy(dtype=float)
    df_cells, df_resid = len(levels) - 1, len(y) - len(levels)
    f_value, p_value, scale = cell_f_test(y, codes, len(levels))
    return _Fit(y, codes, levels, f_value, df_cells, df_resid, p_value, scale)


def cell_f_test(y: np.ndarray, codes: np.ndarray, k: int) -> tuple[float, float, float]:
    """F, p and residual variance of OLS `y ~ C(cell)` against `y ~ 1`: statsmodels' OLS
    fvalue, f_pvalue and scale, as a formula; NaN when undefined (no residual dof or spread).

    With one term per cell the fitted values are the cell means, so the sums of squares need no
    solve; the same numbers without OLS's per-fit overhead, which the null simulation in the tests
    would pay thousands of times (tests/unit/test_analysis_interactions.py checks the equality).
    """
    n = len(y)
    df_cells, df_resid = k - 1, n - k
    if df_cells < 1 or df_resid < 1:
        return math.nan, math.nan, math.nan
    counts = np.bincount(codes, minlength=k)
    means = np.bincount(codes, weights=y, minlength=k) / np.maximum(counts, 1)
    within = float(np.sum((y - means[codes]) ** 2))
    between = float(np.sum((y - y.mean()) ** 2)) - within
    scale = within / df_resid
    if not scale > 1e-12:  # no spread within any cell: F is not defined
        return math.nan, math.nan, math.nan
    f_value = max(between, 0.0) / df_cells / scale
    return f_value, float(special.fdtrc(df_cells, df_resid, f_value)), scale


def _cells(fit: _Fit, level: float, margin: float) -> tuple[CellEffect, ...]:
    """Each cell's mean with a pooled-SD t-interval at `level`, and the outcome it gives."""
    sd = math.sqrt(fit.scale) if math.isfinite(fit.scale) else math.nan
    t = float(special.stdtrit(fit.df_resid, 0.5 + level / 2)) if math.isfinite(sd) else math.nan
    counts = np.bincount(fit.codes, minlength=len(fit.levels))
    sums = np.bincount(fit.codes, weights=fit.y, minlength=len(fit.levels))
    out = []
    for (dropout, optimizer), n, total in zip(fit.levels, counts, sums, strict=True):
        mean = float(total / n)
        if n >= MIN_PAIRS and math.isfinite(t):
            half = t * sd / math.sqrt(n)
            est = Estimate(int(n), mean, sd, mean - half, mean + half, level)
        else:
            est = Estimate(int(n), mean, sd, math.nan, math.nan, level)
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
