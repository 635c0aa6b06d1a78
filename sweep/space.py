"""Translate a spec into what Ray Tune runs: trial configurations, searcher and scheduler."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sweep.spec import Range, SweepSpec
from sweep.trial import CONFIRM_SEED, REPEAT_KEY, SEED_KEY, RunStatus, TrialKey, config_key


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


def random_blocks(spec: SweepSpec) -> list[dict[str, Any]]:
    """`num_samples` distinct (dropout, optimizer) blocks, drawn from `strategy.search_seed`.

    The same spec always draws the same blocks, so a resumed sweep completes the blocks it began
    instead of drawing others. (The spec refuses more blocks than a list-only search has.)
    """
    rng = np.random.default_rng(spec.strategy.search_seed)
    search = spec.search
    labels = list(search.optimizers)
    blocks: dict[tuple[float, str], dict[str, Any]] = {}
    while len(blocks) < spec.strategy.num_samples:
        if isinstance(search.dropout, Range):
            dropout = round(float(rng.uniform(search.dropout.low, search.dropout.high)), 4)
        else:
            dropout = float(rng.choice(search.dropout))
        optimizer = labels[int(rng.integers(len(labels)))]
        blocks.setdefault((dropout, optimizer), {"dropout": dropout, "optimizer": optimizer})
    return list(blocks.values())


def blocks(spec: SweepSpec) -> list[dict[str, Any]]:
    """The (dropout, optimizer) settings every placement and seed runs on (grid or random)."""
    if spec.strategy.algorithm == "random":
        return random_blocks(spec)
    assert isinstance(spec.search.dropout, list)
    return [
        {"dropout": float(d), "optimizer": o}
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

    Optuna suggests only (dropout, optimizer) and learns from the block's mean, so it tunes the
    settings every placement shares and every placement comparison stays paired.
    """
    from ray.tune.search import Repeater

    class BlockRepeater(Repeater):  # type: ignore[misc]
        def suggest(self, trial_id: str) -> dict[str, Any] | None:
            config = super().suggest(trial_id)
            return _blocked(config, placements) if isinstance(config, dict) else config

    return BlockRepeater(searcher, repeat=len(placements) * seeds, set_index=True)


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
    """What a searcher draws: the settings a block shares (placement and seed come per trial)."""
    from ray import tune

    search = spec.search
    dropout = (
        tune.uniform(search.dropout.low, search.dropout.high)
        if isinstance(search.dropout, Range)
        else tune.choice(list(search.dropout))
    )
    return {"dropout": dropout, "optimizer": tune.choice(list(search.optimizers))}


def block_key(config: dict[str, Any]) -> tuple[float, str]:
    """The block a trial belongs to: the settings every placement and seed in it share."""
    return (round(float(config["dropout"]), 6), str(config["optimizer"]))


def tune_plan(spec: SweepSpec, done: frozenset[TrialKey] = frozenset()) -> TunePlan:
    """Build the param space, search algorithm and scheduler for `spec`.

    `done` holds the keys of trials an earlier attempt finished; they are not run again. A resumed
    Optuna sweep draws only the blocks it has not begun (`completion_plan` finishes the others).
    """
    strategy = spec.strategy
    if strategy.algorithm != "optuna":
        points = grid_configs(spec) if strategy.algorithm == "grid" else random_configs(spec)
        return explicit_plan(spec, [p for p in points if config_key(p) not in done])
    searcher = _tpe_search(spec, strategy.search_seed + len(done))
    search_alg = block_repeater(searcher, list(spec.search.placement), spec.search.seeds)
    begun = len({(k[1], k[2]) for k in done})
    num_samples = max(0, strategy.num_samples - begun) * search_alg.repeat
    return _with_scheduler(spec, _domains(spec), search_alg, num_samples)


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
    }


def _points(points: list[dict[str, Any]]) -> Any:
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return BasicVariantGenerator(points_to_evaluate=points, max_concurrent=0)


def completion_plan(spec: SweepSpec, done: frozenset[TrialKey]) -> TunePlan | None:
    """The trials missing from blocks an interrupted Optuna sweep began, or None.

    Grid and random sweeps need none: their plan already holds every trial not done.
    """
    if spec.strategy.algorithm != "optuna" or not done:
        return None
    begun = {(k[1], k[2]) for k in done}
    points = [
        {"placement": p, "dropout": dropout, "optimizer": optimizer, SEED_KEY: s}
        for dropout, optimizer in sorted(begun)
        for s in range(spec.search.seeds)
        for p in spec.search.placement
        if (p, dropout, optimizer, s) not in done
    ]
    if not points:
        return None
    return explicit_plan(spec, points)


def tuning_plans(spec: SweepSpec, done: frozenset[TrialKey] = frozenset()) -> list[TunePlan]:
    """per_placement tuning: each placement searched on its own, one seed per trial.

    Random: the same `num_samples` drawn blocks for every placement (each then keeps its own best);
    optuna: one TPE search per placement, so each placement finds its own learning rate and dropout.
    """
    strategy, placements = spec.strategy, list(spec.search.placement)
    if strategy.algorithm == "random":
        points = [{"placement": p, **block, SEED_KEY: 0} for block in random_blocks(spec) for p in placements]
        points = [p for p in points if config_key(p) not in done]
        return [explicit_plan(spec, points)]
    plans = []
    for i, placement in enumerate(placements):
        begun = sum(1 for k in done if k[0] == placement and k[3] < CONFIRM_SEED)
        searcher = _tpe_search(spec, strategy.search_seed + i + len(done))
        space = {**_domains(spec), "placement": placement, SEED_KEY: 0}
        plans.append(_with_scheduler(spec, space, searcher, max(0, strategy.num_samples - begun)))
    return plans


def best_blocks(trials: Any, spec: SweepSpec) -> dict[str, dict[str, Any]]:
    """Each placement's best tuning block by the sweep's metric (a trial table, sweep.results).

    Only finished tuning trials count; a placement with none keeps no block (it is not re-run).
    """
    metric = f"final_{spec.strategy.metric}"
    tuning = (trials["status"] == RunStatus.FINISHED) & (trials["seed"] < CONFIRM_SEED)
    tuned = trials[tuning].dropna(subset=[metric])
    best: dict[str, dict[str, Any]] = {}
    for placement, mine in tuned.groupby("placement"):
        means = mine.groupby(["dropout", "optimizer"])[metric].mean()
        dropout, optimizer = means.idxmax() if spec.strategy.mode == "max" else means.idxmin()
        best[str(placement)] = {"dropout": float(dropout), "optimizer": str(optimizer)}
    return best


def confirmation_plan(
    spec: SweepSpec,
    best: dict[str, dict[str, Any]],
    done: frozenset[TrialKey] = frozenset(),
) -> TunePlan:
    """Each placement's best block re-run on `search.seeds` fresh seeds (what the verdict compares)."""
    points = [
        {"placement": p, **best[p], SEED_KEY: CONFIRM_SEED + s}
        for s in range(spec.search.seeds)
        for p in spec.search.placement
        if p in best
    ]
    points = [p for p in points if config_key(p) not in done]
    return explicit_plan(spec, points)


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
