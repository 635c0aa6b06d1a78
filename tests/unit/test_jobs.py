"""The job layer's pure parts: what travels with a submitted sweep, ids, the auth token."""

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from sweep import jobs
from sweep.cli import app
from sweep.jobs import _use_token_if_present, check_sweep_id, stage, submission_id
from sweep.spec import SpecError, load_spec
from sweep.store.layout import JOB_TAG
from sweep.tracking import SweepTracker, local_tracking_uri

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


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


def test_stage_ships_a_data_folder_whole(tmp_path: Path) -> None:
    # A folder of files (the image_folder source's data) travels as a tree, not as one file.
    (tmp_path / "images" / "cat").mkdir(parents=True)
    (tmp_path / "images" / "cat" / "1.png").write_bytes(b"png")
    (tmp_path / "spec.yaml").write_text("name: staged\ndataset: {source: npz, path: images}\n")
    (tmp_path / "job").mkdir()
    stage(load_spec(tmp_path / "spec.yaml"), tmp_path / "job")
    assert (tmp_path / "job" / "data" / "images" / "cat" / "1.png").read_bytes() == b"png"
    assert load_spec(tmp_path / "job" / "spec.yaml").dataset.path == str(tmp_path / "job" / "data" / "images")


def test_stage_refuses_a_missing_data_file(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text("name: staged\ndataset: {source: npz, path: gone.npz}\n")
    (tmp_path / "job").mkdir()
    with pytest.raises(SpecError, match=r"dataset\.path: file not found"):
        stage(load_spec(tmp_path / "spec.yaml"), tmp_path / "job")


def test_stage_ships_the_builders_folder_and_points_the_ref_at_the_copy(tmp_path: Path) -> None:
    source = tmp_path / "project"
    (source / "models").mkdir(parents=True)
    (source / "models" / "net.py").write_text("def build(**kw):\n    return 'shipped'\n")
    (source / "spec.yaml").write_text(
        "name: staged\nmodel: {kind: python, builder: models/net.py:build, args: {width: 3}}\n"
    )
    job = tmp_path / "job"
    job.mkdir()
    stage(load_spec(source / "spec.yaml"), job)
    (source / "models" / "net.py").unlink()  # the job needs nothing from the project's folder
    shipped = load_spec(job / "spec.yaml")
    assert shipped.model.builder is not None
    assert shipped.model.builder.startswith(str(job / "code"))
    assert shipped.model.args == {"width": 3}
    from sweep.refs import MODELS_GROUP, load_ref

    assert load_ref(shipped.model.builder, MODELS_GROUP, "model.builder")() == "shipped"


def test_stage_refuses_a_missing_builder_file_located(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text("name: staged\nmodel: {kind: python, builder: gone.py:build}\n")
    (tmp_path / "job").mkdir()
    with pytest.raises(SpecError, match=r"model\.builder: file not found"):
        stage(load_spec(tmp_path / "spec.yaml"), tmp_path / "job")


def test_the_submission_id_is_derived_from_the_sweep_id() -> None:
    assert submission_id("quick-20261125-101010-abcd") == "sweep-quick-20261125-101010-abcd"


@pytest.mark.parametrize("bad", ["../etc", "Quick", "a b", "", "x;rm -rf /"])
def test_malformed_sweep_ids_are_refused(bad: str) -> None:
    with pytest.raises(SpecError, match="is not a sweep id"):
        check_sweep_id(bad)


def test_a_configured_token_turns_token_auth_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = os.environ.get("RAY_AUTH_MODE")
    monkeypatch.setenv("RAY_AUTH_MODE", "")  # recorded, so teardown restores it whatever the code sets
    monkeypatch.delenv("RAY_AUTH_MODE")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    _use_token_if_present()
    assert "RAY_AUTH_MODE" not in os.environ  # no token anywhere: leave Ray's default
    monkeypatch.setenv("RAY_AUTH_TOKEN", "secret")
    _use_token_if_present()
    assert os.environ["RAY_AUTH_MODE"] == "token"
    monkeypatch.undo()
    assert os.environ.get("RAY_AUTH_MODE") == before  # nothing leaks into later tests


class ClusterWithOneJob:
    """The Jobs API of a cluster that knows one job, its id Ray's own (a plain `ray job submit`)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id

    def get_job_info(self, job_id: str) -> SimpleNamespace:
        if job_id != self.job_id:
            raise RuntimeError(f"Job {job_id} does not exist")
        return SimpleNamespace(
            submission_id=job_id,
            status="RUNNING",
            message="",
            start_time=1_764_700_000_000,
            end_time=None,
            metadata={},
        )


def test_status_finds_a_job_started_by_ray_job_submit_through_its_parent_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = local_tracking_uri(tmp_path)
    spec = load_spec(EXAMPLES / "quick.yaml")
    tracker = SweepTracker(uri, spec, "quick-20261202-1", tmp_path, run_tags={JOB_TAG: "raysubmit_aBcD1234"})
    tracker.start_sweep()
    monkeypatch.setattr(jobs, "job_client", lambda address: ClusterWithOneJob("raysubmit_aBcD1234"))

    found = jobs.status("quick-20261202-1", address="http://head:8265", tracking_uri=uri)
    assert (found.submission_id, found.status) == ("raysubmit_aBcD1234", "RUNNING")
    with pytest.raises(jobs.JobNotFound, match="no Ray job for sweep quick-20261202-1"):
        jobs.status("quick-20261202-1", address="http://head:8265")  # no store to look in
    with pytest.raises(jobs.JobNotFound, match="no Ray job for sweep quick-20261202-2"):
        jobs.status("quick-20261202-2", address="http://head:8265", tracking_uri=uri)  # no such sweep

    shown = CliRunner().invoke(
        app, ["status", "quick-20261202-1", "--address", "http://head:8265", "--tracking-uri", uri]
    )
    assert shown.exit_code == 0, shown.output
    assert "ray job         raysubmit_aBcD1234: RUNNING" in shown.output


class FlakyJobsApi:
    """A Jobs API that answers each submit_job with the next of `answers` (an error, or None: taken)."""

    def __init__(self, *answers: Exception | None) -> None:
        self.answers = list(answers)
        self.sent: list[dict[str, object]] = []

    def submit_job(self, **job: object) -> None:
        self.sent.append(job)
        answer = self.answers.pop(0)
        if answer is not None:
            raise answer


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs.time, "sleep", lambda s: None)


def test_a_submit_asks_for_a_sweep_slot(no_sleep: None) -> None:
    api = FlakyJobsApi(None)
    assert jobs._send(api, "sweep-x", {"entrypoint": "e", "entrypoint_resources": {"sweep_slot": 1.0}})
    assert api.sent == [
        {"submission_id": "sweep-x", "entrypoint": "e", "entrypoint_resources": {"sweep_slot": 1.0}}
    ]


def test_a_submit_to_a_head_still_starting_is_sent_again(no_sleep: None) -> None:
    import requests

    starting = RuntimeError("Request failed with status code 500: No available agent to submit job")
    refused = ConnectionError("Failed to connect to Ray at address: http://127.0.0.1:8265.")  # Ray's SDK
    api = FlakyJobsApi(starting, requests.ConnectionError("Connection aborted."), refused, None)
    assert jobs._send(api, "sweep-x", {}) is True
    assert len(api.sent) == 4


def test_already_exists_after_a_dropped_try_means_that_try_landed(no_sleep: None) -> None:
    import requests

    exists = RuntimeError("Job with submission_id sweep-x already exists")
    assert jobs._send(FlakyJobsApi(requests.ConnectionError("x"), exists), "sweep-x", {}) is True
    assert jobs._send(FlakyJobsApi(exists), "sweep-x", {}) is False  # someone else's


def test_a_refusal_is_not_sent_again(no_sleep: None) -> None:
    api = FlakyJobsApi(RuntimeError("Request failed with status code 400: bad runtime_env"), None)
    with pytest.raises(RuntimeError, match="bad runtime_env"):
        jobs._send(api, "sweep-x", {})
    assert len(api.sent) == 1


def test_a_head_that_never_starts_is_given_up_on(no_sleep: None) -> None:
    starting = RuntimeError("No available agent to submit job")
    with pytest.raises(RuntimeError, match="No available agent"):
        jobs._send(FlakyJobsApi(*[starting] * 5), "sweep-x", {}, patience_s=-1)
