"""The planner interface: what Ray Tune runs next, given the trials so far.

Modelled on KerasTuner's Oracle (keras_tuner/src/engine/oracle.py), which its Tuner asks for
each next trial. A sweep hands Tune whole runs (Tune's searcher and scheduler decide within
one), so a planner answers one run at a time, and the runner's loop is

    while (plan := planner.next_plan(trials)) is not None:
        run plan

`trials` reads the sweep's trial table as the tracking store holds it once every write of
the runs so far has landed. It is a function, not a table, because only planners whose next
run depends on results read it (per_placement's confirmation, each adaptive look): grid,
random and optuna sweeps never pay a query between runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Set
from typing import TYPE_CHECKING, Any

from sweep.space import TunePlan, explicit_plan
from sweep.spec import SweepSpec
from sweep.trial import TrialKey, config_key

if TYPE_CHECKING:
    import pandas as pd

Done = frozenset[TrialKey]  # what earlier attempts of the sweep ended for good
TrialTable = Callable[[], "pd.DataFrame"]  # the trial table now (sweep.results.trial_table's columns)


class Planner(ABC):
    """Decides a sweep's Tune runs, one at a time."""

    @property
    @abstractmethod
    def expected(self) -> int:
        """Trials this attempt runs in all, as far as known now (adaptive rounds add to it)."""

    @abstractmethod
    def next_plan(self, trials: TrialTable) -> TunePlan | None:
        """The next Tune run, never empty; None once the sweep needs no more."""


class PlannedAhead(Planner):
    """A planner whose runs are all known before the first starts: it hands them out in order."""

    def __init__(self, plans: Iterable[TunePlan | None]) -> None:
        self._plans = [p for p in plans if p is not None and p.num_samples]
        self._expected = sum(p.num_samples for p in self._plans)

    @property
    def expected(self) -> int:
        return self._expected

    def next_plan(self, trials: TrialTable) -> TunePlan | None:
        return self._plans.pop(0) if self._plans else None


def missing_run(spec: SweepSpec, points: list[dict[str, Any]], done: Set[TrialKey]) -> TunePlan | None:
    """One run of the trial configurations whose key is not in `done`; None if every one is."""
    missing = [p for p in points if config_key(p) not in done]
    return explicit_plan(spec, missing) if missing else None
