"""A real local Ray sweep into a real MLflow store, read back with MlflowClient."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sweep import parse_spec, run_sweep
from sweep.results import find_sweep, learning_curves, trial_table
from sweep.store import SweepStore
from sweep.store.layout import PHASE

pytestmark = pytest.mark.slow

EPOCHS = 3


def mixed_spec(name: str = "engine-test", **extra: object):
    """2 placements x 2 optimizers; the `explode` optimizer's huge step makes the loss NaN."""
    return parse_spec(
        {
            "name": name,
            "dataset": {"n_samples": 240, "n_features": 8, "seed": 1},
            "model": {"hidden_units": [8], "activation": "relu"},
            "search": {
                "placement": ["before_activation", "none"],
                "dropout": [0.25],
                "optimizer": [
                    {"name": "adam", "learning_rate": 0.01},
                    {"name": "sgd", "learning_rate": 1.0e6, "label": "explode"},
                ],
                "seeds": 1,
            },
            "training": {"epochs": EPOCHS, "batch_size": 32},
            "tracking": {"experiment": "engine-test"},
            **extra,
        }
    )


@pytest.fixture(scope="module")
def finished(ray_local: None, tmp_path_factory: pytest.TempPathFactory):
    runs = tmp_path_factory.mktemp("runs")
    events = []
    result = run_sweep(mixed_spec(), runs_dir=runs, progress=events.append)
    client = MlflowClient(result.tracking_uri)
    return result, client, events, runs


def children(client: MlflowClient, result) -> list:
    return SweepStore(client).trial_runs(find_sweep(client, result.sweep_id, with_spec=False))


def test_parent_run_is_finished_with_sweep_id_spec_and_count(finished) -> None:
    result, client, _, _ = finished
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["sweep.id"] == result.sweep_id
    assert parent.data.tags["sweep.state"] == "finished"
    assert parent.data.params["trial_count"] == "4"
    assert parent.data.tags["sweep.trials_finished"] == "2"
    assert parent.data.tags["sweep.trials_failed"] == "2"
    artifacts = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert "spec.yaml" in artifacts


def test_one_child_per_trial_none_left_running(finished) -> None:
    result, client, _, _ = finished
    runs = children(client, result)
    assert len(runs) == 4
    assert {r.info.status for r in runs} <= {"FINISHED", "FAILED"}


def test_children_carry_the_named_params(finished) -> None:
    result, client, _, _ = finished
    for run in children(client, result):
        params = run.data.params
        assert params["placement"] in {"before_activation", "none"}
        assert params["dropout"] == "0.25"
        assert params["optimizer"] in {"adam", "sgd"}
        assert params["seed"] == "0"
        assert "optimizer.learning_rate" in params


def test_finished_trials_have_full_epoch_histories(finished) -> None:
    result, client, _, _ = finished
    ok = [r for r in children(client, result) if r.info.status == "FINISHED"]
    assert {r.data.params["optimizer"] for r in ok} == {"adam"}
    for run in ok:
        for metric in ("loss", "accuracy", "val_loss", "val_accuracy"):
            history = client.get_metric_history(run.info.run_id, metric)
            assert sorted(p.step for p in history) == list(range(1, EPOCHS + 1))
        metrics = run.data.metrics
        assert 0 <= metrics["final_val_accuracy"] <= metrics["best_val_accuracy"] <= 1
        assert metrics["epochs_completed"] == EPOCHS
        assert metrics["duration_s"] > 0
        assert run.data.tags["ray.node_ip"]
        assert len(run.data.tags["ray.node_id"]) == 56  # Ray's hex node id
        assert run.data.tags["ray.hostname"] and int(run.data.tags["ray.pid"]) > 0
        # No GPU asked for (gpus_per_trial 0): TensorFlow trained on the CPU and Ray gave no GPU ids.
        assert run.data.tags["trial.device"] == "cpu"
        assert "ray.gpu_ids" not in run.data.tags


def test_diverging_trial_is_failed_with_its_error(finished) -> None:
    result, client, events, _ = finished
    failed = [r for r in children(client, result) if r.info.status == "FAILED"]
    assert len(failed) == 2
    for run in failed:
        assert run.data.params["optimizer.label"] == "explode"
        assert "TrialDiverged: training diverged at epoch 1" in run.data.tags["error"]
        assert "error.txt" in {a.path for a in client.list_artifacts(run.info.run_id)}
        # max_failures is 2 by default, but a diverged trial is final: one attempt, no retry
        assert run.data.tags["trial.failure"] == "diverged"
        assert run.data.tags["trial.attempts"] == "1"
        # it failed before reporting an epoch; the node comes from its exception's note
        assert len(run.data.tags["ray.node_id"]) == 56 and int(run.data.tags["ray.pid"]) > 0
        assert run.data.tags["trial.device"] == "cpu"
    assert [e.status for e in events].count("FAILED") == 2
    assert "RETRYING" not in [e.status for e in events]
    assert events[-1].done + events[-1].failed == 4


def test_trial_table_reads_the_sweep_back_from_mlflow_alone(finished) -> None:
    result, client, _, _ = finished
    record = find_sweep(client, result.sweep_id)
    assert record.state == "finished" and record.trials_total == 4
    assert "name: engine-test" in (record.spec_yaml or "")
    table = trial_table(client, record)
    assert len(table) == 4
    assert sorted(table.status) == ["FAILED", "FAILED", "FINISHED", "FINISHED"]
    assert list(table.device) == ["cpu"] * 4


def test_bn_variance_shift_is_logged_for_bn_placements_only(finished) -> None:
    result, client, _, _ = finished
    table = trial_table(client, find_sweep(client, result.sweep_id))
    ok = table[table.status == "FINISHED"].set_index("placement")
    assert ok.loc["before_activation", "bn_variance_shift"] > 0
    assert ok.loc["none", "bn_variance_shift"] != ok.loc["none", "bn_variance_shift"]  # NaN


def test_resume_runs_only_what_did_not_end(finished) -> None:
    from sweep import resume_sweep

    result, client, _, runs = finished
    # Pretend the driver died mid-trial: one run left RUNNING, which resume must redo.
    victim = next(r for r in children(client, result) if r.info.status == "FINISHED")
    client.update_run(victim.info.run_id, status="RUNNING")
    again = resume_sweep(result.sweep_id, runs_dir=runs)
    assert again.sweep_id == result.sweep_id
    assert again.parent_run_id == result.parent_run_id
    runs_now = children(client, result)
    assert len(runs_now) == 4
    assert {r.info.status for r in runs_now} <= {"FINISHED", "FAILED"}
    assert client.get_run(result.parent_run_id).info.status == "FINISHED"
    assert victim.info.run_id not in {r.info.run_id for r in runs_now}


def test_same_seed_gives_identical_results(ray_local: None, tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "name": "repeat",
            "dataset": {"n_samples": 200, "n_features": 6},
            "model": {"hidden_units": [8]},
            "search": {"placement": ["after_dropout"], "dropout": [0.5], "seeds": 1},
            "training": {"epochs": 2},
        }
    )
    a = run_sweep(spec, runs_dir=tmp_path / "a")
    b = run_sweep(spec, runs_dir=tmp_path / "b")
    ta = trial_table(MlflowClient(a.tracking_uri), find_sweep(MlflowClient(a.tracking_uri), a.sweep_id))
    tb = trial_table(MlflowClient(b.tracking_uri), find_sweep(MlflowClient(b.tracking_uri), b.sweep_id))
    assert ta.final_val_loss.tolist() == tb.final_val_loss.tolist()


def test_sweep_logs_to_an_mlflow_server(ray_local: None, mlflow_server: str, tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "name": "to-server",
            "dataset": {"n_samples": 200, "n_features": 6},
            "model": {"hidden_units": [8]},
            "search": {"placement": ["before_activation", "after_dropout"], "dropout": [0.2], "seeds": 1},
            "training": {"epochs": 2},
            "tracking": {"experiment": "server-test", "uri": mlflow_server},
        }
    )
    result = run_sweep(spec, runs_dir=tmp_path)
    assert result.tracking_uri == mlflow_server
    client = MlflowClient(mlflow_server)
    assert client.get_run(result.parent_run_id).info.status == "FINISHED"
    table = trial_table(client, find_sweep(client, result.sweep_id))
    assert sorted(table.placement) == ["after_dropout", "before_activation"]
    assert set(table.status) == {"FINISHED"}
    assert not (tmp_path / "mlflow.db").exists()


def test_report_is_logged_on_the_parent_run(finished) -> None:
    import re

    result, client, _, runs = finished
    artifacts = {a.path for a in client.list_artifacts(result.parent_run_id, "report")}
    expected = {
        "report.md",
        "report.html",
        "analysis.json",
        "forest.png",
        "learning_curves.png",
        "final_accuracy.png",
        "placement_dropout.png",
    }
    assert {f"report/{name}" for name in expected} <= artifacts
    html = Path(client.download_artifacts(result.parent_run_id, "report/report.html")).read_text()
    sources = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert len(sources) == 4 and all(s.startswith("data:image/png;base64,") for s in sources)
    parent = client.get_run(result.parent_run_id)
    assert "placement.before_activation.val_accuracy_mean" in parent.data.metrics
    assert parent.data.tags["mlflow.note.content"].startswith("## The answer\n\n- ")
    assert "## Verdict" in parent.data.tags["mlflow.note.content"]
    assert result.verdict and (runs / result.sweep_id / "report" / "report.md").is_file()
    assert result.answer and result.answer[0] in parent.data.tags["mlflow.note.content"]


def test_its_results_csv_fed_back_to_sweep_report_gives_the_same_verdict(finished, tmp_path: Path) -> None:
    """`sweep results --csv` then `sweep report --trials`: the sweep's own verdict, without MLflow."""
    import json
    import subprocess
    import sys

    result, client, _, runs = finished
    cli = [sys.executable, "-m", "sweep.cli"]
    shown = subprocess.run(
        [*cli, "results", result.sweep_id, "--runs-dir", str(runs), "--csv", str(tmp_path / "trials.csv")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    finished_ids = trial_table(client, find_sweep(client, result.sweep_id)).query("status == 'FINISHED'")
    learning_curves(client, list(finished_ids.run_id)).to_csv(tmp_path / "curves.csv", index=False)
    own = json.loads((runs / result.sweep_id / "report" / "analysis.json").read_text())
    spec = runs / result.sweep_id / "spec.yaml"
    for extra in ([], ["--curves", str(tmp_path / "curves.csv")]):
        out = tmp_path / f"report{len(extra)}"
        args = ["report", "--trials", str(tmp_path / "trials.csv"), "--spec", str(spec), "--out", str(out)]
        done = subprocess.run([*cli, *args, *extra], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        again = json.loads((out / "analysis.json").read_text())
        assert again["outcomes"] == own["outcomes"] and again["answer"] == own["answer"]
        assert again["comparisons"] == own["comparisons"]
        if extra:  # with the curves, every sentence: epochs to target too
            assert again["verdict"] == own["verdict"]
        else:  # without them, the same verdict less what only curves tell
            missing = [s for s in own["verdict"] if s not in again["verdict"]]
            assert again["verdict"] == [s for s in own["verdict"] if s not in missing]
            assert missing and all("Epochs to reach" in s or "accuracy sooner than" in s for s in missing)


@pytest.mark.parametrize(
    ("algorithm", "scheduler"), [("optuna", "asha"), ("random", "fifo")], ids=["optuna-asha", "random-fifo"]
)
def test_adaptive_search_and_early_stopping_run_and_pair_seeds(
    ray_local: None, tmp_path: Path, algorithm: str, scheduler: str
) -> None:
    spec = parse_spec(
        {
            "name": f"{algorithm}-{scheduler}",
            "dataset": {"n_samples": 200, "n_features": 6},
            "model": {"hidden_units": [8]},
            "search": {
                "placement": ["before_activation", "none"],
                "dropout": {"low": 0.0, "high": 0.5},
                "seeds": 2,
            },
            "training": {"epochs": 4},
            "strategy": {"algorithm": algorithm, "num_samples": 2, "scheduler": scheduler, "grace_period": 1},
        }
    )
    result = run_sweep(spec, runs_dir=tmp_path)
    client = MlflowClient(result.tracking_uri)
    table = trial_table(client, find_sweep(client, result.sweep_id))
    assert len(table) == 8 and set(table.status) == {"FINISHED"}
    # blocked: each drawn (dropout, optimizer) ran every placement with every seed, so all pair
    per_block = table.groupby(["dropout", "optimizer"]).apply(
        lambda b: sorted(zip(b.placement, b.seed, strict=True)), include_groups=False
    )
    assert len(per_block) == 2
    assert all(
        trials == [(p, s) for p in ("before_activation", "none") for s in (0, 1)] for trials in per_block
    )
    assert table.dropout.between(0.0, 0.5).all()


def test_per_placement_tuning_reruns_each_placements_best_on_fresh_seeds(
    ray_local: None, tmp_path: Path
) -> None:
    spec = parse_spec(
        {
            "name": "per-placement",
            "dataset": {"n_samples": 200, "n_features": 6},
            "model": {"hidden_units": [8]},
            "search": {"placement": ["before_activation", "none"], "dropout": [0.0, 0.5], "seeds": 2},
            "training": {"epochs": 2},
            "strategy": {"algorithm": "random", "num_samples": 2, "tuning": "per_placement"},
        }
    )
    result = run_sweep(spec, runs_dir=tmp_path)
    assert result.state == "finished"
    client = MlflowClient(result.tracking_uri)
    record = find_sweep(client, result.sweep_id)
    table = trial_table(client, record)
    assert len(table) == spec.trial_count == 8 and set(table.status) == {"FINISHED"}
    phase = {t.run_id: t.tags[PHASE] for t in SweepStore(client).trials(record)}
    assert table.phase.tolist() == table.run_id.map(phase).tolist()  # the table reads the tag
    tuning, reruns = table[table.phase == "tuning"], table[table.phase == "confirmation"]
    assert len(tuning) == 4 and set(tuning.seed) == {0}
    assert len(reruns) == 4 and set(reruns.seed) == {1000, 1001}
    for placement, mine in reruns.groupby("placement"):  # each re-ran its own best tuning block
        tuned = tuning[tuning.placement == placement]
        best = tuned.loc[tuned.final_val_accuracy.idxmax()]
        assert set(zip(mine.dropout, mine.optimizer, strict=True)) == {(best.dropout, best.optimizer)}


def test_adaptive_seeds_add_rounds_only_while_undecided(ray_local: None, tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "name": "adaptive",
            "dataset": {"n_samples": 200, "n_features": 6},
            "model": {"hidden_units": [8]},
            "search": {
                "placement": ["before_activation", "none"],
                "dropout": [0.0],
                "seeds": {"min": 2, "max": 4},
            },
            "training": {"epochs": 2},
        }
    )
    result = run_sweep(spec, runs_dir=tmp_path)
    assert result.state == "finished"
    client = MlflowClient(result.tracking_uri)
    record = find_sweep(client, result.sweep_id)
    table = trial_table(client, record)
    parent = client.get_run(record.parent_run_id)
    ran = int(parent.data.metrics["adaptive.trials_run"])
    assert len(table) == ran and set(table.status) == {"FINISHED"}
    assert parent.data.metrics["adaptive.trials_saved"] == 8 - ran
    call = parent.data.tags["adaptive.before_activation.vs.none"]
    seeds = sorted(table.seed.unique())
    assert seeds == list(range(len(seeds))) and 2 <= len(seeds) <= 4  # rounds add seeds in order
    for placement in ("before_activation", "none"):  # each round ran both placements of the pair
        assert sorted(table[table.placement == placement].seed) == seeds
    if len(seeds) < 4:  # it stopped early: the comparison was decided
        assert "cannot tell" not in call, call
    else:
        assert "look" in call or "too few" in call


def test_the_actor_table_names_the_node_of_a_dead_trial_worker(ray_local: None) -> None:
    # What a retry records for an attempt lost before its first epoch: the error names the actor
    # ("The actor <id> is unavailable"), Ray's actor table names where it ran, dead or alive.
    import ray

    from sweep.failures import actor_in_trace, node_of_actor

    @ray.remote(num_cpus=0)
    class Worker:
        def pid(self) -> int:
            import os

            return os.getpid()

    worker = Worker.remote()  # type: ignore[attr-defined]
    pid = ray.get(worker.pid.remote())
    actor_id = worker._actor_id.hex()
    ray.kill(worker)
    node = node_of_actor(actor_in_trace(f"The actor {actor_id} is unavailable: RpcError: Socket closed"))
    assert node == {
        "node_id": ray.get_runtime_context().get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "pid": str(pid),
    }
    assert node_of_actor("f" * 32) == {}  # an actor Ray never had
