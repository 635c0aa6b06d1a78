"""An adaptive sweep's sequential calls, as its parent run recorded them (sweep/adaptive.py).

With `search.seeds: {min, max}` seeds were added while comparisons were undecided, so the data
were looked at repeatedly. The sequential calls spend the error rate over those looks; the
fixed-sample intervals elsewhere in the report, computed once on the final data, do not, and are
descriptive there. Each call is a JSON tag `adaptive.<placement>.vs.<reference>` on the parent
run (sweep.adaptive.Call.to_json); a tag that is not such JSON (sweeps recorded before calls were
data) is shown as recorded and decides nothing.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CALL_TAG = re.compile(r"adaptive\.(?P<placement>[^.]+)\.vs\.(?P<reference>[^.]+)")
OUTCOMES = ("better", "worse", "equivalent", "cannot tell")


@dataclass(frozen=True)
class SequentialCall:
    """One comparison's call at the sweep's last look."""

    placement: str
    reference: str
    outcome: str  # better | worse | equivalent | cannot tell
    text: str  # the call in words: look, seeds, pairs, difference and interval
    look: int | None = None
    seeds: int | None = None  # seeds with pairs the call rests on
    pairs: int | None = None
    difference: float = math.nan  # points, mean of the per-seed means
    low: float = math.nan  # the look's interval
    high: float = math.nan
    level: float = math.nan


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
        calls.append(_call(match["placement"], match["reference"], tags[key]))
    run, saved = (_count(metrics.get(f"adaptive.trials_{k}")) for k in ("run", "saved"))
    if not calls and run is None and saved is None:
        return None
    return AdaptiveSeeds(tuple(calls), run, saved)


def _call(placement: str, reference: str, recorded: str) -> SequentialCall:
    """One call from its JSON tag; anything else decides nothing and is shown as recorded."""
    try:
        data: Any = json.loads(recorded)
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("outcome") not in OUTCOMES:
        return SequentialCall(placement, reference, "cannot tell", f"not read as a call: {recorded}")

    def number(key: str) -> float:
        value = data.get(key)
        return float(value) if isinstance(value, int | float) else math.nan

    def whole(key: str) -> int | None:
        value = data.get(key)
        return int(value) if isinstance(value, int) else None

    call = SequentialCall(
        placement,
        reference,
        data["outcome"],
        "",
        whole("look"),
        whole("seeds_with_pairs"),
        whole("pairs"),
        number("difference"),
        number("low"),
        number("high"),
        number("level"),
    )
    return dataclasses.replace(call, text=describe(call))


def describe(c: SequentialCall) -> str:
    """ "worse at look 1 (3 seeds, 12 pairs): -3.10 points, interval -4.20 to -2.00 (at 99.4%)"."""
    head = f"{c.outcome} at look {c.look} ({c.seeds} seed(s), {c.pairs} pairs)"
    if not (math.isfinite(c.low) and math.isfinite(c.high)):
        return f"{head}: no interval (fewer than 3 seeds with pairs, or no spread)"
    level = f" (at {c.level * 100:.4g}%)" if math.isfinite(c.level) else ""
    return f"{head}: {c.difference:+.2f} points, interval {c.low:+.2f} to {c.high:+.2f}{level}"


def _count(value: float | None) -> int | None:
    return int(value) if value is not None and math.isfinite(value) else None
