"""Blocked random search: drawn blocks, each run by every placement and seed, in one Tune run."""

from __future__ import annotations

from sweep.planning.base import Done, PlannedAhead, missing_run
from sweep.space import random_configs
from sweep.spec import SweepSpec


class RandomPlanner(PlannedAhead):
    """One run of every drawn configuration an earlier attempt did not end.

    The spec's `search_seed` decides the draws, so a resumed sweep completes the blocks it began.
    """

    def __init__(self, spec: SweepSpec, done: Done = frozenset()) -> None:
        super().__init__([missing_run(spec, random_configs(spec), done)])
