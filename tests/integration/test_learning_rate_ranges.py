"""A learning-rate range swept for real: local Ray, local MLflow, read back with MlflowClient."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from sweep import parse_spec, resume_sweep, run_sweep
from sweep.results import find_sweep, trial_table
from sweep.space import random_blocks
from sweep.store import SweepStore
from sweep.trial import CONFIRM_SEED

pytestmark = pytest.mark.slow

SPEC = parse_spec(
    {
        "name": "lr-range-test",
        "dataset": {"n_samples": 200, "n_features": 6, "seed": 1},
        "model": {"hidden_units": [8], "activation": "relu"},
        "search": {
            "placement": ["before_activation", "none"],
            "dropout": [0.0],
            "optimizer": [{"name": "sgd", "learning_rate": {"low": 0.001, "high": 1.0}}],
            "seeds": 1,
        },
        "training": {"epochs": 1, "batch_size": 32},
        "strategy": {"algorithm": "random", "tuning": "per_placement", "num_samples": 2, "search_seed": 4},
        "tracking": {"experiment": "lr-range-test"},
    }
)


@pytest.fixture(scope="module")
def swept(ray_local: None, tmp_path_factory: pytest.TempPathFactory):
    runs = tmp_path_factory.mktemp("runs")
    result = run_sweep(SPEC, runs_dir=runs)
    return result, MlflowClient(result.tracking_uri), runs


def children(client: MlflowClient, sweep_id: str) -> list:
    return SweepStore(client).trial_runs(find_sweep(client, sweep_id, with_spec=False))


def test_each_child_run_records_its_blocks_drawn_rate(swept) -> None:
    result, client, _ = swept
    drawn = {b["learning_rate"] for b in random_blocks(SPEC)}
    assert len(drawn) == 2
    runs = children(client, result.sweep_id)
    assert len(runs) == SPEC.trial_count == 2 * 2 + 2 * 1
    assert {r.info.status for r in runs} == {"FINISHED"}
    tuning = [r.data.params for r in runs if int(r.data.params["seed"]) < CONFIRM_SEED]
    # Both placements tuned on the same drawn rates: each block's rate is every placement's.
    for placement in SPEC.search.placement:
        mine = {float(p["optimizer.learning_rate"]) for p in tuning if p["placement"] == placement}
        assert mine == drawn
    table = trial_table(client, find_sweep(client, result.sweep_id))
    assert set(table["learning_rate"]) == drawn


def test_each_placement_is_rerun_at_its_own_best_rate(swept) -> None:
    result, client, _ = swept
    table = trial_table(client, find_sweep(client, result.sweep_id))
    tuning = table[table["seed"] < CONFIRM_SEED]
    reruns = table[table["seed"] >= CONFIRM_SEED]
    for placement, mine in tuning.groupby("placement"):
        best = float(mine.loc[mine["final_val_accuracy"].idxmax(), "learning_rate"])
        assert set(reruns.loc[reruns["placement"] == placement, "learning_rate"]) == {best}


def test_a_resumed_sweep_reruns_a_lost_trial_at_the_same_rate(swept) -> None:
    result, client, runs = swept
    victim = next(r for r in children(client, result.sweep_id) if int(r.data.params["seed"]) < CONFIRM_SEED)
    client.update_run(victim.info.run_id, status="RUNNING")  # as a driver that died mid-trial leaves it
    resume_sweep(result.sweep_id, runs_dir=runs, report=False)
    runs_now = children(client, result.sweep_id)
    assert len(runs_now) == SPEC.trial_count and victim.info.run_id not in {r.info.run_id for r in runs_now}
    again = [
        r.data.params
        for r in runs_now
        if r.data.params["placement"] == victim.data.params["placement"]
        and r.data.params["seed"] == victim.data.params["seed"]
    ]
    lost_rate = victim.data.params["optimizer.learning_rate"]
    assert lost_rate in {p["optimizer.learning_rate"] for p in again}  # its block, not a new draw
    assert len(again) == 2  # and no third block drawn in its place
