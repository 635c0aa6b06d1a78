"""Planners: what Ray Tune runs next, given the trials so far (one module per kind of search).

The runner asks `planner_for(spec, ...)` for its planner, and that planner for each next run
(sweep.planning.base). Ray Tune's objects for a run are built by sweep.space.
"""

from __future__ import annotations

from sweep.planning.adaptive import AdaptivePlanner, LookRecorder
from sweep.planning.base import Done, Planner, TrialTable
from sweep.planning.grid import GridPlanner
from sweep.planning.optuna import OptunaPlanner
from sweep.planning.per_placement import PerPlacementPlanner
from sweep.planning.random import RandomPlanner
from sweep.spec import SweepSpec

__all__ = [
    "AdaptivePlanner",
    "Done",
    "GridPlanner",
    "LookRecorder",
    "OptunaPlanner",
    "PerPlacementPlanner",
    "Planner",
    "RandomPlanner",
    "TrialTable",
    "planner_for",
]


def planner_for(
    spec: SweepSpec, done: Done = frozenset(), record_look: LookRecorder | None = None
) -> Planner:
    """The planner of `spec`'s search.

    `done`: the keys of trials earlier attempts ended for good (sweep.tracking's start_sweep);
    `record_look`: where an adaptive sweep records each look (the runner: the parent run).
    """
    if spec.search.adaptive is not None:
        return AdaptivePlanner(spec, record_look)
    if spec.strategy.tuning == "per_placement":
        return PerPlacementPlanner(spec, done)
    if spec.strategy.algorithm == "optuna":
        return OptunaPlanner(spec, done)
    if spec.strategy.algorithm == "random":
        return RandomPlanner(spec, done)
    return GridPlanner(spec, done)
