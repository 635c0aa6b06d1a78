"""An adaptive sweep's sequential calls, as its parent run recorded them (sweep/adaptive.py).

With `search.seeds: {min, max}` seeds were added while comparisons were undecided, so the data
were looked at repeatedly. The sequential calls spend the error rate over those looks; the
fixed-sample intervals elsewhere in the report, computed once on the final data, do not, and are
descriptive there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

CALL_TAG = re.compile(r"adaptive\.(?P<placement>[^.]+)\.vs\.(?P<reference>[^.]+)")
_OUTCOME = re.compile(r": (better|worse|equivalent|cannot tell) at look")


@dataclass(frozen=True)
class SequentialCall:
    """One comparison's call at the sweep's last look."""

    placement: str
    reference: str
    outcome: str  # better | worse | equivalent | cannot tell
    text: str  # as the sweep recorded it: look, seeds, pairs, difference and interval


@dataclass(frozen=True)
class AdaptiveSeeds:
    """What an adaptive sweep decided and what it saved against `max` seeds everywhere."""

    calls: tuple[SequentialCall, ...]
    trials_run: int | None
    trials_saved: int | None


def adaptive_seeds(tags: Mapping[str, str], metrics: Mapping[str, float]) -> AdaptiveSeeds | None:
    """From a parent run's `adaptive.<placement>.vs.<reference>` tags and `adaptive.trials_*`
    metrics; None for a sweep that was not adaptive."""
    calls = []
    for key in sorted(tags):
        match = CALL_TAG.fullmatch(key)
        if match is None:
            continue
        found = _OUTCOME.search(tags[key])
        outcome = found.group(1) if found else "cannot tell"  # "too few pairs" decides nothing
        calls.append(SequentialCall(match["placement"], match["reference"], outcome, tags[key]))
    run, saved = (_count(metrics.get(f"adaptive.trials_{k}")) for k in ("run", "saved"))
    if not calls and run is None and saved is None:
        return None
    return AdaptiveSeeds(tuple(calls), run, saved)


def _count(value: float | None) -> int | None:
    return int(value) if value is not None and math.isfinite(value) else None
