"""Placement by dropout and optimizer: cell means, winners, and the best dropout with and without BN."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sweep.analysis.formatting import metric_label
from sweep.analysis.trials import has_bn


@dataclass(frozen=True, eq=False)
class CellMeans:
    """Mean metric by placement and one other factor, and the winner at each level (descriptive;
    interactions.py tests whether the placement effect depends on the factors)."""

    factor: str  # "dropout" or "optimizer"
    table: pd.DataFrame  # index placement, columns the factor's levels, mean metric (fraction)
    counts: pd.DataFrame  # usable trials per cell
    winners: tuple[tuple[Any, str], ...]  # (level, placement with the highest mean)
    note: str | None  # a sentence when the winner changes with the level


@dataclass(frozen=True)
class BestDropout:
    """The dropout rate with the highest mean metric in one group of placements."""

    group: str  # "with BN" or "without BN"
    dropout: float
    mean: float
    n: int


def cell_means(usable: pd.DataFrame, factor: str, metric: str, order: Sequence[str]) -> CellMeans | None:
    if usable.empty:
        return None
    table = usable.pivot_table(index="placement", columns=factor, values=metric, aggfunc="mean")
    counts = usable.pivot_table(index="placement", columns=factor, values=metric, aggfunc="count")
    rows = [p for p in order if p in table.index]
    table, counts = table.reindex(rows), counts.reindex(rows).fillna(0).astype(int)
    levels = pd.Index([level_key(c) for c in table.columns], name=factor)
    table.columns, counts.columns = levels, levels
    winners = tuple(
        (level_key(level), str(table[level].idxmax()))
        for level in table.columns
        if table[level].notna().any()
    )
    note = None
    if len({w for _, w in winners}) > 1:
        where = ", ".join(f"{w} {_level_text(factor, lvl)}" for lvl, w in winners)
        note = (
            f"The placement with the highest mean {metric_label(metric)} changes with {factor}: "
            f"{where} (cell means; the interaction tests say whether the differences are real)."
        )
    return CellMeans(factor, table, counts, winners, note)


def level_key(level: Any) -> Any:
    return float(level) if isinstance(level, float | np.floating) else str(level)


def _level_text(factor: str, level: Any) -> str:
    return f"at {factor} {level:g}" if isinstance(level, float) else f"with {level}"


def best_dropout(usable: pd.DataFrame, metric: str) -> tuple[BestDropout, ...]:
    out = []
    bn = usable["placement"].map(has_bn).astype(bool)
    for group, mask in (("with BN", bn), ("without BN", ~bn)):
        means = usable[mask].groupby("dropout")[metric].agg(["mean", "count"])
        if means.empty:
            continue
        dropout = float(means["mean"].idxmax())  # type: ignore[arg-type]
        row = means.loc[dropout]
        out.append(BestDropout(group, dropout, float(row["mean"]), int(row["count"])))  # type: ignore[arg-type]
    return tuple(out)
