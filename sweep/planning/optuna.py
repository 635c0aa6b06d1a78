"""Blocked Optuna (TPE) search: each suggested block run by every placement and seed."""

from __future__ import annotations

from sweep.planning.base import Done, PlannedAhead, missing_run
from sweep.space import blocked_optuna_plan
from sweep.spec import SweepSpec
from sweep.trial import RATE_KEY, SEED_KEY


class OptunaPlanner(PlannedAhead):
    """A resumed sweep first completes the blocks it began, then draws only the blocks left.

    TPE's draws are not replayed, so the blocks an earlier attempt began are completed as a
    list of their missing trials; the new search is seeded apart from the first (`+ len(done)`).
    """

    def __init__(self, spec: SweepSpec, done: Done = frozenset()) -> None:
        strategy, search = spec.strategy, spec.search
        begun = sorted({(key.dropout, key.optimizer, key.learning_rate) for key in done}, key=str)
        completion = [
            {"placement": p, "dropout": dropout, "optimizer": optimizer, RATE_KEY: rate, SEED_KEY: s}
            for dropout, optimizer, rate in begun
            for s in range(search.seeds)
            for p in search.placement
        ]
        left = max(0, strategy.num_samples - len(begun))
        super().__init__(
            [
                missing_run(spec, completion, done),
                blocked_optuna_plan(spec, strategy.search_seed + len(done), left) if left else None,
            ]
        )
