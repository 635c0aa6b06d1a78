"""Per-placement tuning: only the re-runs of each placement's best block are compared.

`strategy.tuning: per_placement` tunes each placement on its own (one seed per tuning trial), then
re-runs each placement's best block on fresh seeds (from CONFIRM_SEED; the child runs' `trial.phase`
tag says which). The tuning trials chose the blocks, so comparing them would reuse the data that
picked the winner; the blocks differ between placements, so the re-runs pair on the seed alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from sweep.analysis.trials import NOT_RECORDED
from sweep.trial import CONFIRM_SEED

PHASES = ("tuning", "confirmation")
SEED_ONLY = ("seed",)  # what the re-runs of different blocks share


@dataclass(frozen=True)
class ChosenBlock:
    """The block a placement's tuning chose, and the trials behind the choice and its re-runs."""

    placement: str
    dropout: float
    optimizer: str
    learning_rate: float  # the block's (drawn from a range, or fixed); 0 where the table has none
    tuning_trials: int  # the placement's tuning trials (all blocks)
    tuning_value: float  # the chosen block's mean metric in tuning (fraction); NaN if none finished
    confirmation_trials: int


@dataclass(frozen=True)
class OwnSettings:
    """How a per-placement sweep was compared: each placement at its own best block."""

    n_tuning: int  # tuning trials, every placement
    n_seeds: int  # fresh seeds of the re-runs
    blocks: tuple[ChosenBlock, ...]  # one per placement with re-runs (two if a block changed)


def is_per_placement(trials: pd.DataFrame) -> bool:
    """Whether the table comes from a per-placement sweep: its runs carry a phase, or some ran on
    a confirmation seed (a shared sweep's seeds stay below CONFIRM_SEED)."""
    if "phase" in trials.columns and trials["phase"].isin(PHASES).any():
        return True
    return bool((pd.to_numeric(trials["seed"], errors="coerce") >= CONFIRM_SEED).any())


def confirmations(trials: pd.DataFrame) -> pd.DataFrame:
    """The re-runs: the trials on fresh seeds (sweep.space.is_confirmation)."""
    return trials[trials["seed"] >= CONFIRM_SEED]


def own_settings(trials: pd.DataFrame, metric: str, order: Sequence[str]) -> OwnSettings:
    """Each placement's re-run block, with its tuning trials and their mean at that block."""
    tuning = trials[trials["seed"] < CONFIRM_SEED]
    rerun = confirmations(trials)
    finished = tuning[tuning["status"] == "FINISHED"]
    blocks = []
    for placement in order:
        mine = rerun[rerun["placement"] == placement]
        for (dropout, optimizer, rate), runs in mine.groupby(["dropout", "optimizer", "learning_rate"]):
            at = finished[
                (finished["placement"] == placement)
                & (finished["dropout"] == dropout)
                & (finished["optimizer"] == optimizer)
                & (finished["learning_rate"] == rate)
            ][metric]
            blocks.append(
                ChosenBlock(
                    placement=placement,
                    dropout=float(dropout),  # type: ignore[arg-type]
                    optimizer=str(optimizer),
                    learning_rate=float(rate),  # type: ignore[arg-type]
                    tuning_trials=int((tuning["placement"] == placement).sum()),
                    tuning_value=float(at.mean()) if len(at) else math.nan,
                    confirmation_trials=len(runs),
                )
            )
    return OwnSettings(len(tuning), int(rerun["seed"].nunique()), tuple(blocks))


def describe(own: OwnSettings) -> str:
    """One sentence on what was compared."""
    chosen = "; ".join(f"{b.placement} dropout {b.dropout:g} with {b.optimizer}{_at(b)}" for b in own.blocks)
    return (
        f"Compared at each placement's own best settings (re-run on {own.n_seeds} fresh seeds), "
        f"paired on the seed alone: {chosen or 'no placement has re-runs yet'}. The "
        f"{own.n_tuning} tuning trials that chose these settings are not compared: they picked the "
        f"winner, one seed per setting."
    )


def _at(block: ChosenBlock) -> str:
    return f" at learning rate {block.learning_rate:.4g}" if block.learning_rate != NOT_RECORDED else ""
