"""Learning rates drawn from a range: the rate at which each placement did best.

Where an optimizer's learning rate is a range, each block draws one rate and every placement
runs it, so the blocks say at which rate each placement does best ("does before_activation
tolerate a higher rate?"). Descriptive: the comparisons stay paired within blocks; this reads the
block means. A per-placement sweep shows the rate each placement chose (tuning.ChosenBlock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

BLOCK = ["dropout", "optimizer", "learning_rate"]


@dataclass(frozen=True)
class BestRate:
    """A placement's best block where rates were drawn: its rate, and how it was found."""

    placement: str
    learning_rate: float
    optimizer: str
    dropout: float
    mean: float  # the block's mean metric over its seeds (fraction)
    n: int  # usable trials in that block
    blocks: int  # blocks the placement ran (each at its own rate)
    lowest_rate: float  # the range of rates the placement's blocks covered
    highest_rate: float


def drawn_rates(usable: pd.DataFrame) -> bool:
    """Whether some optimizer ran at more than one learning rate (drawn from a range); never for
    a table without learning rates (`sweep report --trials` of another tool's table)."""
    if usable.empty or "learning_rate" not in usable.columns:
        return False
    return bool((usable.groupby("optimizer")["learning_rate"].nunique() > 1).any())


def matched_on(drawn: bool) -> str:
    """What the shared-tuning pairs are matched on, in words: the learning rate too where drawn."""
    return "dropout, optimizer, learning rate and seed" if drawn else "dropout, optimizer and seed"


def best_rates(usable: pd.DataFrame, metric: str, order: Sequence[str]) -> tuple[BestRate, ...]:
    """Each placement's block with the highest mean `metric`, where rates were drawn; else none."""
    if not drawn_rates(usable):
        return ()
    out = []
    for placement in order:
        mine = usable[usable["placement"] == placement]
        if mine.empty:
            continue
        means = mine.groupby(BLOCK)[metric].agg(["mean", "count"]).reset_index()
        best = means.iloc[int(np.argmax(means["mean"].to_numpy(dtype=float)))]
        dropout, optimizer, rate = best["dropout"], best["optimizer"], best["learning_rate"]
        out.append(
            BestRate(
                placement=placement,
                learning_rate=float(rate),
                optimizer=str(optimizer),
                dropout=float(dropout),
                mean=float(best["mean"]),
                n=int(best["count"]),
                blocks=len(means),
                lowest_rate=float(mine["learning_rate"].min()),
                highest_rate=float(mine["learning_rate"].max()),
            )
        )
    return tuple(out)
