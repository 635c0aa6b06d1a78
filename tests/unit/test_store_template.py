"""New local MLflow stores are copies of a cached, migrated, empty SQLite template."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from sweep.cli import app
from sweep.store.template import seed_local_store, sqlite_path, template_path


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SWEEP_CACHE_DIR", str(cache))
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is relative to the cwd
    return cache


def uri(path: Path) -> str:
    return f"sqlite:///{path}"


def test_a_seeded_store_is_what_mlflow_would_have_created(tmp_path: Path) -> None:
    seeded, plain = tmp_path / "a" / "mlflow.db", tmp_path / "b" / "mlflow.db"
    assert seed_local_store(uri(seeded)) is True
    assert seeded.is_file() and template_path().is_file()
    ours, theirs = MlflowClient(uri(seeded)), MlflowClient(uri(plain))
    default_ours, default_theirs = ours.get_experiment("0"), theirs.get_experiment("0")
    assert default_ours.name == default_theirs.name == "Default"
    assert default_ours.artifact_location == default_theirs.artifact_location
    assert ours.create_experiment("x") == theirs.create_experiment("x") == "1"
    run = ours.create_run("1")
    ours.log_metric(run.info.run_id, "m", 1.0)
    assert ours.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_the_template_is_built_once_and_existing_stores_are_left_alone(tmp_path: Path) -> None:
    first = tmp_path / "one.db"
    assert seed_local_store(uri(first))
    built = template_path().stat().st_mtime_ns
    MlflowClient(uri(first)).create_experiment("kept")
    before = first.read_bytes()
    assert seed_local_store(uri(first)) is False
    assert first.read_bytes() == before
    assert seed_local_store(uri(tmp_path / "two.db"))
    assert template_path().stat().st_mtime_ns == built
    assert not list(tmp_path.glob(".*.partial"))


def test_other_stores_and_a_broken_cache_fall_back_to_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sqlite_path("http://127.0.0.1:5000") is None
    assert sqlite_path("sqlite:///:memory:") is None
    assert seed_local_store("http://127.0.0.1:5000") is False
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("SWEEP_CACHE_DIR", str(blocker))
    db = tmp_path / "slow.db"
    assert seed_local_store(uri(db)) is False
    assert not db.exists()
    assert MlflowClient(uri(db)).get_experiment("0").name == "Default"


@pytest.mark.parametrize("command", [["list"], ["results", "quick-20260101-000000-ab12"]])
def test_a_command_that_reads_a_new_folder_seeds_its_store(command: list[str], tmp_path: Path) -> None:
    # Not MLflow's migration in place, which a driver starting there at the same time would race.
    runs = tmp_path / "runs"
    done = CliRunner().invoke(app, [*command, "--runs-dir", str(runs)])
    assert done.exit_code in (0, 2), done.output
    assert (runs / "mlflow.db").is_file()
    assert template_path().is_file()  # the store was copied from it
