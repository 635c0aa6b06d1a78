"""Translate a spec into what Ray Tune runs: trial configurations, searcher and scheduler.

Which trials run, and when, is the planners' decision (sweep.planning); this module only
builds the Ray Tune objects for a decision. So Tune's searcher and scheduler API is met in one
place, every planner builds its runs the same way, and a plan's pieces are tested here without
a planner.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sweep.spec import Range, SweepSpec
from sweep.trial import DRAWN_RATE_PREFIX, RATE_KEY, REPEAT_KEY, SEED_KEY


def grid_configs(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every grid configuration, seed-major so the first trials already cover every placement."""
    search = spec.search
    assert isinstance(search.dropout, list)
    return [
        {
            "placement": p,
            "dropout": float(d),
            "optimizer": o,
            RATE_KEY: search.optimizers[o].fixed_rate,
            SEED_KEY: s,
        }
        for s, p, d, o in itertools.product(
            range(search.seeds), search.placement, search.dropout, search.optimizers
        )
    ]


def random_blocks(spec: SweepSpec) -> list[dict[str, Any]]:
    """`num_samples` distinct (dropout, optimizer, learning rate) blocks, drawn from `strategy.search_seed`.

    The same spec always draws the same blocks, so a resumed sweep completes the blocks it began
    instead of drawing others. (The spec refuses more blocks than a list-only search has.) A rate
    is drawn only for an optimizer with a range, so a spec without one draws what it always drew.
    """
    rng = np.random.default_rng(spec.strategy.search_seed)
    search = spec.search
    labels = list(search.optimizers)
    blocks: dict[tuple[float, str, float | None], dict[str, Any]] = {}
    while len(blocks) < spec.strategy.num_samples:
        if isinstance(search.dropout, Range):
            dropout = round(float(rng.uniform(search.dropout.low, search.dropout.high)), 4)
        else:
            dropout = float(rng.choice(search.dropout))
        optimizer = labels[int(rng.integers(len(labels)))]
        rates = search.optimizers[optimizer].rate_range
        rate = search.optimizers[optimizer].fixed_rate if rates is None else rates.draw(rng)
        blocks.setdefault(
            (dropout, optimizer, rate), {"dropout": dropout, "optimizer": optimizer, RATE_KEY: rate}
        )
    return list(blocks.values())


def blocks(spec: SweepSpec) -> list[dict[str, Any]]:
    """The (dropout, optimizer) settings every placement and seed runs on (grid or random)."""
    if spec.strategy.algorithm == "random":
        return random_blocks(spec)
    assert isinstance(spec.search.dropout, list)
    return [
        {"dropout": float(d), "optimizer": o, RATE_KEY: spec.search.optimizers[o].fixed_rate}
        for d, o in itertools.product(spec.search.dropout, spec.search.optimizers)
    ]


def seed_round(spec: SweepSpec, placements: Sequence[str], seeds: range) -> list[dict[str, Any]]:
    """Every block for these placements and seeds (an adaptive sweep's next round)."""
    return [
        {"placement": p, **block, SEED_KEY: s} for s in seeds for block in blocks(spec) for p in placements
    ]


def random_configs(spec: SweepSpec) -> list[dict[str, Any]]:
    """Blocked random search: every drawn block runs every placement with every seed.

    So every placement comparison is paired on the same (dropout, optimizer, seed); seed-major,
    so the first trials already cover every block and placement.
    """
    blocks = random_blocks(spec)
    return [
        {"placement": p, **block, SEED_KEY: s}
        for s in range(spec.search.seeds)
        for block in blocks
        for p in spec.search.placement
    ]


def _blocked(config: dict[str, Any], placements: list[str]) -> dict[str, Any]:
    """A blocked Optuna trial's configuration: its repeat index names its placement and seed."""
    index = int(config[REPEAT_KEY])
    return {**config, "placement": placements[index % len(placements)], SEED_KEY: index // len(placements)}


def block_repeater(searcher: Any, placements: list[str], seeds: int) -> Any:
    """Ray's `Repeater`, each suggestion run as a block: every placement x every seed.

    Optuna suggests only the block's settings (dropout, optimizer, a drawn learning rate) and
    learns from the block's mean, so it tunes the settings every placement shares and every
    placement comparison stays paired.
    """
    from ray.tune.search import Repeater

    class BlockRepeater(Repeater):  # type: ignore[misc]
        def suggest(self, trial_id: str) -> dict[str, Any] | None:
            config = super().suggest(trial_id)
            return _blocked(config, placements) if isinstance(config, dict) else config

    return BlockRepeater(searcher, repeat=len(placements) * seeds, set_index=True)


@dataclass(frozen=True)
class TunePlan:
    """The pieces of one `ray.tune.Tuner` run of a sweep."""

    param_space: dict[str, Any]
    search_alg: Any
    scheduler: Any
    num_samples: int
    metric: str
    mode: str


def _domains(spec: SweepSpec) -> dict[str, Any]:
    """What a searcher draws: the settings a block shares (placement and seed come per trial).

    An optimizer with a learning-rate range adds its own rate (DRAWN_RATE_PREFIX + label): TPE
    learns each optimizer's rate apart, and a trial uses only its own optimizer's draw.
    """
    from ray import tune

    search = spec.search
    dropout = (
        tune.uniform(search.dropout.low, search.dropout.high)
        if isinstance(search.dropout, Range)
        else tune.choice(list(search.dropout))
    )
    rates = {
        DRAWN_RATE_PREFIX + label: (tune.loguniform if r.log else tune.uniform)(r.low, r.high)
        for label, o in search.optimizers.items()
        if (r := o.rate_range) is not None
    }
    return {"dropout": dropout, "optimizer": tune.choice(list(search.optimizers)), **rates}


def blocked_optuna_plan(spec: SweepSpec, seed: int, count: int) -> TunePlan:
    """`count` TPE suggestions of (dropout, optimizer), each run as a block (`block_repeater`)."""
    search_alg = block_repeater(_tpe_search(spec, seed), list(spec.search.placement), spec.search.seeds)
    return _with_scheduler(spec, _domains(spec), search_alg, count * search_alg.repeat)


def placement_optuna_plan(spec: SweepSpec, placement: str, seed: int, num_samples: int) -> TunePlan:
    """A TPE search of (dropout, optimizer) for one placement alone, seed 0 (per_placement tuning)."""
    space = {**_domains(spec), "placement": placement, SEED_KEY: 0}
    return _with_scheduler(spec, space, _tpe_search(spec, seed), num_samples)


def _tpe_search(spec: SweepSpec, seed: int) -> Any:
    """Ray Tune's OptunaSearch with a TPE sampler seeded `seed`, on the sweep's metric."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    strategy = spec.strategy
    sampler = optuna.samplers.TPESampler(seed=seed)
    return OptunaSearch(metric=strategy.metric, mode=strategy.mode, sampler=sampler)


def explicit_plan(spec: SweepSpec, points: list[dict[str, Any]]) -> TunePlan:
    """A plan that runs exactly these trial configurations."""
    return _with_scheduler(spec, _explicit_space(spec), _points(points), len(points))


def _explicit_space(spec: SweepSpec) -> dict[str, Any]:
    """The param space of a plan that lists its trials (each point sets every key)."""
    from ray import tune

    return {
        **_domains(spec),
        "placement": tune.choice(list(spec.search.placement)),
        SEED_KEY: tune.choice(list(range(spec.search.seeds))),
        RATE_KEY: tune.uniform(0.0, 1e6),  # a domain only so Tune accepts the points' rates (any > 0)
    }


def _points(points: list[dict[str, Any]]) -> Any:
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return BasicVariantGenerator(points_to_evaluate=points, max_concurrent=0)


def _with_scheduler(spec: SweepSpec, space: dict[str, Any], search_alg: Any, num_samples: int) -> TunePlan:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    strategy = spec.strategy
    if strategy.scheduler == "asha":
        scheduler: Any = ASHAScheduler(
            time_attr="training_iteration",
            max_t=spec.training.epochs,
            grace_period=min(strategy.grace_period, spec.training.epochs),
            reduction_factor=strategy.reduction_factor,
        )
    else:
        scheduler = FIFOScheduler()
    return TunePlan(space, search_alg, scheduler, num_samples, strategy.metric, strategy.mode)
