"""Adaptive seeds: rounds of seeds for the placements whose comparisons are still undecided.

The statistics (each look's calls, the next round) are sweep.adaptive's; this planner turns a
round into a Tune run and records each look.
"""

from __future__ import annotations

from collections.abc import Callable

from sweep.planning.base import Planner, TrialTable, missing_run
from sweep.space import TunePlan, seed_round
from sweep.spec import SweepSpec
from sweep.trial import RAN, with_rates

# A look's record: each comparison's call by tag name, and its counts (trials run and saved).
LookRecorder = Callable[[dict[str, str], dict[str, int]], None]


class AdaptivePlanner(Planner):
    """Each round is decided from the trials the store holds, never from memory.

    So a resumed sweep replays the same looks and runs the round the interrupted one had not
    finished; `expected` counts only the trials this attempt's rounds asked for.
    """

    def __init__(self, spec: SweepSpec, record_look: LookRecorder | None = None) -> None:
        self.spec = spec
        self.record_look = record_look
        self._planned = 0

    @property
    def expected(self) -> int:
        return self._planned

    def next_plan(self, trials: TrialTable) -> TunePlan | None:
        # Imported here: scipy.stats costs seconds, and only adaptive sweeps need it.
        from sweep.adaptive import call_tags, ran_keys, replay, trials_saved

        spec, table = self.spec, with_rates(trials(), self.spec)
        progress = replay(table, spec)
        if self.record_look is not None:
            ran = int(table["status"].isin(RAN).sum())
            self.record_look(
                call_tags(progress.calls),
                {"adaptive.trials_run": ran, "adaptive.trials_saved": trials_saved(spec, ran)},
            )
        if progress.next_round is None:
            return None
        round_ = progress.next_round
        plan = missing_run(spec, seed_round(spec, round_.placements, round_.seeds), ran_keys(table))
        self._planned += plan.num_samples if plan is not None else 0
        return plan
