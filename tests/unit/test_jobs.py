"""The job layer's pure parts: what travels with a submitted sweep, ids, the auth token."""

from pathlib import Path

import pytest

from sweep.jobs import _use_token_if_present, check_sweep_id, stage, submission_id
from sweep.spec import SpecError, load_spec


def test_stage_ships_the_spec_and_its_data_file_with_a_relative_path(tmp_path: Path) -> None:
    source = tmp_path / "project"
    (source / "data").mkdir(parents=True)
    (source / "data" / "train.csv").write_text("a,b,y\n1,2,0\n")
    (source / "spec.yaml").write_text(
        "name: staged\ndataset: {source: csv, path: data/train.csv, target: y}\n"
    )
    job = tmp_path / "job"
    job.mkdir()
    stage(load_spec(source / "spec.yaml", ["training.epochs=3"]), job)
    assert (job / "data" / "train.csv").read_text() == "a,b,y\n1,2,0\n"
    shipped = load_spec(job / "spec.yaml")  # as the job reads it, from its own working dir
    assert shipped.dataset.path == str(job / "data" / "train.csv")
    assert shipped.training.epochs == 3


def test_stage_refuses_a_missing_data_file(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text("name: staged\ndataset: {source: npz, path: gone.npz}\n")
    (tmp_path / "job").mkdir()
    with pytest.raises(SpecError, match=r"dataset\.path: file not found"):
        stage(load_spec(tmp_path / "spec.yaml"), tmp_path / "job")


def test_the_submission_id_is_derived_from_the_sweep_id() -> None:
    assert submission_id("quick-20261125-101010-abcd") == "sweep-quick-20261125-101010-abcd"


@pytest.mark.parametrize("bad", ["../etc", "Quick", "a b", "", "x;rm -rf /"])
def test_malformed_sweep_ids_are_refused(bad: str) -> None:
    with pytest.raises(SpecError, match="is not a sweep id"):
        check_sweep_id(bad)


def test_a_configured_token_turns_token_auth_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    _use_token_if_present()
    import os

    assert "RAY_AUTH_MODE" not in os.environ  # no token anywhere: leave Ray's default
    monkeypatch.setenv("RAY_AUTH_TOKEN", "secret")
    _use_token_if_present()
    assert os.environ["RAY_AUTH_MODE"] == "token"
