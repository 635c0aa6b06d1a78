"""per_placement tuning: each placement tuned on its own, then its best block re-run on fresh seeds.

The verdict compares the re-runs (the confirmation), so each placement is judged at its own
best settings rather than at settings every placement shares.
"""

from __future__ import annotations

from typing import Any

from sweep.planning.base import Done, PlannedAhead, TrialTable, missing_run
from sweep.space import TunePlan, placement_optuna_plan, random_blocks
from sweep.spec import SweepSpec
from sweep.trial import CONFIRM_SEED, RATE_KEY, SEED_KEY, RunStatus, with_rates


class PerPlacementPlanner(PlannedAhead):
    """The tuning runs, known ahead; then one confirmation run, decided from their results."""

    def __init__(self, spec: SweepSpec, done: Done = frozenset()) -> None:
        super().__init__(tuning_plans(spec, done))
        self.spec, self.done = spec, done
        confirmed = sum(1 for key in done if key[3] >= CONFIRM_SEED)
        self._confirmations = len(spec.search.placement) * spec.search.seeds - confirmed
        self._confirming = False

    @property
    def expected(self) -> int:
        return super().expected + self._confirmations

    def next_plan(self, trials: TrialTable) -> TunePlan | None:
        plan = super().next_plan(trials)
        if plan is None and self._confirmations and not self._confirming:
            self._confirming = True
            best = best_blocks(trials(), self.spec)
            plan = missing_run(self.spec, confirmation_points(self.spec, best), self.done)
        return plan


def tuning_plans(spec: SweepSpec, done: Done = frozenset()) -> list[TunePlan | None]:
    """Each placement searched on its own, one seed per trial (None: a placement already tuned).

    Random: the same `num_samples` drawn blocks for every placement (each then keeps its own best);
    optuna: one TPE search per placement, so each placement finds its own learning rate and dropout.
    """
    strategy, placements = spec.strategy, list(spec.search.placement)
    if strategy.algorithm == "random":
        points = [{"placement": p, **block, SEED_KEY: 0} for block in random_blocks(spec) for p in placements]
        return [missing_run(spec, points, done)]
    plans: list[TunePlan | None] = []
    for i, placement in enumerate(placements):
        left = strategy.num_samples - sum(1 for k in done if k[0] == placement and k[3] < CONFIRM_SEED)
        seed = strategy.search_seed + i + len(done)
        plans.append(placement_optuna_plan(spec, placement, seed, left) if left > 0 else None)
    return plans


def best_blocks(trials: Any, spec: SweepSpec) -> dict[str, dict[str, Any]]:
    """Each placement's best tuning block by the sweep's metric (a trial table, sweep.results).

    Only finished tuning trials count; a placement with none keeps no block (it is not re-run).
    A block is its dropout, optimizer and learning rate (drawn per block from a range, or fixed).
    """
    metric = f"final_{spec.strategy.metric}"
    tuning = (trials["status"] == RunStatus.FINISHED) & (trials["seed"] < CONFIRM_SEED)
    tuned = with_rates(trials[tuning].dropna(subset=[metric]), spec)
    best: dict[str, dict[str, Any]] = {}
    for placement, mine in tuned.groupby("placement"):
        means = mine.groupby(["dropout", "optimizer", "learning_rate"])[metric].mean()
        dropout, optimizer, rate = means.idxmax() if spec.strategy.mode == "max" else means.idxmin()
        best[str(placement)] = {"dropout": float(dropout), "optimizer": str(optimizer), RATE_KEY: float(rate)}
    return best


def confirmation_points(spec: SweepSpec, best: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each placement's best block on `search.seeds` fresh seeds (what the verdict compares)."""
    return [
        {"placement": p, **best[p], SEED_KEY: CONFIRM_SEED + s}
        for s in range(spec.search.seeds)
        for p in spec.search.placement
        if p in best
    ]
