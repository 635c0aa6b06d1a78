"""Simulated trial tables for the whole-path calibration of the verdict (test_analysis_calibration.py,
benchmarks/calibration.py): seed effects, unequal cell variances, failed and ASHA-stopped trials.

Accuracy of placement p in cell c (dropout x optimizer) with seed s, in points:

    85 + level_c + shared_s + u_ps + effect_pc + e_pcs,   e_pcs ~ N(0, sd_c^2)

`shared_s` (what every placement of a seed shares) cancels from paired differences; u_ps, a
placement's own seed effect (its initial weights and batch order interact with the placement),
does not: it makes one seed's differences correlated across cells. With u_ps ~ N(0, tau^2), the
intra-seed correlation of the differences is tau^2 / (tau^2 + v), v the mean of the cells' sd_c^2.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sweep.analysis import Analysis

PLACEMENTS = ("before_activation", "after_activation", "after_dropout", "none")
DROPOUTS = (0.1, 0.5)
OPTIMIZERS = ("adam", "sgd")
EPOCHS = 6


@dataclass(frozen=True)
class Design:
    """One simulated condition."""

    seeds: int = 6
    icc: float = 0.0  # intra-seed correlation of the paired differences
    sd: float = 1.5  # points: a trial's own noise in every cell but the noisy one
    noisy_cell_factor: float = 3.0  # the SD of cell (0.5, sgd) is this many times `sd`
    fail_share: float = 0.05  # trials that fail (no metrics)
    stopped_share: float = 0.3  # trials ASHA stops after 2 or 4 of EPOCHS epochs
    effects: dict[str, float] = field(default_factory=dict)  # placement -> points, every cell


def simulate(design: Design, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A trial table and its learning curves, in the shape `analyse` takes."""
    mean_var = design.sd**2 * (len(_cells()) - 1 + design.noisy_cell_factor**2) / len(_cells())
    tau = math.sqrt(mean_var * design.icc / (1 - design.icc))
    levels = {c: rng.normal(0, 3) for c in _cells()}
    rows, curves = [], []
    for seed in range(design.seeds):
        shared = rng.normal(0, 2)
        own = {p: rng.normal(0, tau) if tau else 0.0 for p in PLACEMENTS}
        for dropout, optimizer in _cells():
            sd = design.sd * (design.noisy_cell_factor if (dropout, optimizer) == (0.5, "sgd") else 1)
            for p in PLACEMENTS:
                full = (
                    85
                    + levels[dropout, optimizer]
                    + shared
                    + own[p]
                    + design.effects.get(p, 0.0)
                    + rng.normal(0, sd)
                ) / 100
                run_id = f"{p}-{dropout}-{optimizer}-{seed}"
                failed = rng.random() < design.fail_share
                epochs = EPOCHS if rng.random() >= design.stopped_share else int(rng.choice([2, 4]))
                at = [full - 0.01 * (EPOCHS - e) for e in range(1, epochs + 1)]  # the same trend for all
                final = math.nan if failed else at[-1]
                rows.append(
                    {
                        "run_id": run_id,
                        "status": "FAILED" if failed else "FINISHED",
                        "placement": p,
                        "dropout": dropout,
                        "optimizer": optimizer,
                        "seed": seed,
                        "final_val_accuracy": final,
                        "best_val_accuracy": final,
                        "final_val_loss": 1 - final,
                        "final_accuracy": final,
                        "epochs_completed": math.nan if failed else float(epochs),
                    }
                )
                if not failed:
                    curves += [
                        {"run_id": run_id, "epoch": e, "val_accuracy": a, "accuracy": a, "val_loss": 1 - a}
                        for e, a in enumerate(at, start=1)
                    ]
    return pd.DataFrame(rows), pd.DataFrame(curves)


def _cells() -> list[tuple[float, str]]:
    return [(d, o) for d in DROPOUTS for o in OPTIMIZERS]


_OVERALL = re.compile(r"^(\S+) is (better|worse) than (\S+) ")
_SLIGHTLY = re.compile(r"^(\S+) is equivalent to (\S+) .*so it is slightly (better|worse)")
_CELLS = re.compile(r"^Against (\S+), (\S+) is (.*): its effect depends")


def directional_claims(analysis: Analysis) -> set[tuple[str, str, str]]:
    """(placement, reference, better|worse) for every directional claim the printed verdict makes,
    read from its sentences: overall, "slightly" inside the margin, or in some cell."""
    claims = set()
    for sentence in analysis.verdict:
        if found := _OVERALL.match(sentence):
            claims.add((found[1], found[3], found[2]))
        elif found := _SLIGHTLY.match(sentence):
            claims.add((found[1], found[2], found[3]))
        elif found := _CELLS.match(sentence):
            for word in ("better", "worse"):
                if re.search(rf"\b{word}\b", found[3]):
                    claims.add((found[2], found[1], word))
    return claims


def false_claims(analysis: Analysis, effects: dict[str, float]) -> bool:
    """Whether the verdict claims a direction where the truth has none, or the wrong one."""
    for placement, reference, word in directional_claims(analysis):
        truth = effects.get(placement, 0.0) - effects.get(reference, 0.0)
        if truth == 0 or (truth > 0) != (word == "better"):
            return True
    return False
