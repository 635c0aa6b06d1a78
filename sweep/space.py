"""Translate a spec into what Ray Tune runs: trial configurations, searcher and scheduler."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from sweep.spec import Range, SweepSpec

SEED_KEY = "seed"
REPEAT_KEY = "__trial_index__"  # set by ray.tune.search.Repeater on each repeat of a suggestion


def grid_configs(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every grid configuration, seed-major so the first trials already cover every placement."""
    search = spec.search
    assert isinstance(search.dropout, list)
    return [
        {"placement": p, "dropout": float(d), "optimizer": o, SEED_KEY: s}
        for s, p, d, o in itertools.product(
            range(search.seeds), search.placement, search.dropout, search.optimizers
        )
    ]


def random_configs(spec: SweepSpec, seed: int) -> list[dict[str, Any]]:
    """`num_samples` configurations drawn up front (reproducibly), each run with every seed."""
    rng = np.random.default_rng(seed)
    search = spec.search
    labels = list(search.optimizers)
    draws = []
    for _ in range(spec.strategy.num_samples):
        if isinstance(search.dropout, Range):
            dropout = round(float(rng.uniform(search.dropout.low, search.dropout.high)), 4)
        else:
            dropout = float(rng.choice(search.dropout))
        draws.append(
            {
                "placement": str(rng.choice(search.placement)),
                "dropout": dropout,
                "optimizer": labels[int(rng.integers(len(labels)))],
            }
        )
    return [{**d, SEED_KEY: s} for s in range(search.seeds) for d in draws]


def trial_seed(config: dict[str, Any]) -> int:
    """The seed of a trial, whichever search made its configuration."""
    return int(config[SEED_KEY] if SEED_KEY in config else config.get(REPEAT_KEY, 0))


@dataclass(frozen=True)
class TunePlan:
    """The pieces of a `ray.tune.Tuner` for one spec."""

    param_space: dict[str, Any]
    search_alg: Any
    scheduler: Any
    num_samples: int
    metric: str
    mode: str


def _domains(spec: SweepSpec) -> dict[str, Any]:
    from ray import tune

    search = spec.search
    dropout = (
        tune.uniform(search.dropout.low, search.dropout.high)
        if isinstance(search.dropout, Range)
        else tune.choice(list(search.dropout))
    )
    return {
        "placement": tune.choice(list(search.placement)),
        "dropout": dropout,
        "optimizer": tune.choice(list(search.optimizers)),
    }


def config_key(config: dict[str, Any]) -> tuple[str, float, str, int]:
    """What identifies a trial across attempts: (placement, dropout, optimizer label, seed)."""
    return (
        str(config["placement"]),
        round(float(config["dropout"]), 6),
        str(config["optimizer"]),
        trial_seed(config),
    )


def tune_plan(
    spec: SweepSpec, search_seed: int = 0, done: frozenset[tuple[str, float, str, int]] = frozenset()
) -> TunePlan:
    """Build the param space, search algorithm and scheduler for `spec`.

    `done` holds the keys of trials an earlier attempt finished; they are not run again.
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    strategy = spec.strategy
    space = _domains(spec)
    if strategy.algorithm == "optuna":
        import optuna
        from ray.tune.search import Repeater
        from ray.tune.search.optuna import OptunaSearch

        searcher = OptunaSearch(
            metric=strategy.metric,
            mode=strategy.mode,
            sampler=optuna.samplers.TPESampler(seed=search_seed),
        )
        # Repeater gives each suggestion `seeds` trials, indexed by __trial_index__.
        search_alg: Any = Repeater(searcher, repeat=spec.search.seeds, set_index=True)
        groups_done = len({k[:3] for k in done})
        num_samples = max(0, spec.strategy.num_samples - groups_done) * spec.search.seeds
    else:
        points = grid_configs(spec) if strategy.algorithm == "grid" else random_configs(spec, search_seed)
        points = [p for p in points if config_key(p) not in done]
        space[SEED_KEY] = tune.choice(list(range(spec.search.seeds)))
        search_alg = BasicVariantGenerator(points_to_evaluate=points, max_concurrent=0)
        num_samples = len(points)
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
