"""Grid search: every (placement, dropout, optimizer, seed) of the spec, in one Tune run."""

from __future__ import annotations

from sweep.planning.base import Done, PlannedAhead, missing_run
from sweep.space import grid_configs
from sweep.spec import SweepSpec


class GridPlanner(PlannedAhead):
    """One run of every grid configuration an earlier attempt did not end."""

    def __init__(self, spec: SweepSpec, done: Done = frozenset()) -> None:
        super().__init__([missing_run(spec, grid_configs(spec), done)])
