"""services/start-*.sh: the command lines they build, with `ray` and `mlflow` replaced by a fake."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"
# Prints the variables the scripts export, then its arguments, one per line.
FAKE_CLI = """#!/bin/sh
echo "RAY_AUTH_MODE=${RAY_AUTH_MODE:-} RAY_JOB_STOP_SIGNAL=${RAY_JOB_STOP_SIGNAL:-}\
 RAY_JOB_START_TIMEOUT_SECONDS=${RAY_JOB_START_TIMEOUT_SECONDS:-}\
 MLFLOW_SERVER_ENABLE_JOB_EXECUTION=${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-}"
for arg in "$@"; do echo "$arg"; done
"""


@pytest.fixture
def fake_cli(tmp_path: Path) -> Path:
    path = tmp_path / "fake-cli"
    path.write_text(FAKE_CLI)
    path.chmod(0o755)
    return path


def run(script: str, home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The script with an empty environment but for HOME, PATH and env."""
    return subprocess.run(
        [str(SERVICES / script), *args],
        env={"PATH": os.environ["PATH"], "HOME": str(home), **env},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("script", ["start-head.sh", "start-worker.sh"])
def test_ray_scripts_refuse_to_start_without_a_token(script: str, tmp_path: Path, fake_cli: Path) -> None:
    result = run(script, tmp_path, RAY_CMD=str(fake_cli))
    assert result.returncode == 2
    assert "RAY_AUTH_TOKEN" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("script", ["start-head.sh", "start-worker.sh"])
def test_ray_scripts_accept_a_token_file(script: str, tmp_path: Path, fake_cli: Path) -> None:
    token = tmp_path / "token"
    token.write_text("secret")
    assert run(script, tmp_path, RAY_CMD=str(fake_cli), RAY_AUTH_TOKEN_PATH=str(token)).returncode == 0
    (tmp_path / ".ray").mkdir()
    token.rename(tmp_path / ".ray" / "auth_token")
    assert run(script, tmp_path, RAY_CMD=str(fake_cli)).returncode == 0


def test_head_defaults_suit_the_container(tmp_path: Path, fake_cli: Path) -> None:
    result = run("start-head.sh", tmp_path, "--temp-dir=/x", RAY_CMD=str(fake_cli), RAY_AUTH_TOKEN="t")
    exported, *args = result.stdout.splitlines()
    # A queued job waits up to 30 days for its slot (Ray's own default fails it after 15 minutes).
    assert exported == (
        "RAY_AUTH_MODE=token RAY_JOB_STOP_SIGNAL=SIGINT RAY_JOB_START_TIMEOUT_SECONDS=2592000"
        " MLFLOW_SERVER_ENABLE_JOB_EXECUTION="
    )
    assert args == [
        "start",
        "--head",
        "--block",
        "--port=6379",
        "--dashboard-host=0.0.0.0",
        "--dashboard-port=8265",
        '--resources={"sweep_slot": 2}',
        "--temp-dir=/x",
    ]


def test_head_takes_its_settings_from_the_environment(tmp_path: Path, fake_cli: Path) -> None:
    settings = {"RAY_PORT": "1", "RAY_DASHBOARD_HOST": "127.0.0.1", "RAY_DASHBOARD_PORT": "2"}
    settings |= {"RAY_NODE_IP": "10.0.0.5", "RAY_NUM_CPUS": "3", "RAY_JOB_STOP_SIGNAL": "SIGTERM"}
    settings |= {"SWEEP_MAX_RUNNING_SWEEPS": "5", "RAY_JOB_START_TIMEOUT_SECONDS": "60"}
    result = run("start-head.sh", tmp_path, RAY_CMD=str(fake_cli), RAY_AUTH_TOKEN="t", **settings)
    exported, *args = result.stdout.splitlines()
    assert exported == (
        "RAY_AUTH_MODE=token RAY_JOB_STOP_SIGNAL=SIGTERM RAY_JOB_START_TIMEOUT_SECONDS=60"
        " MLFLOW_SERVER_ENABLE_JOB_EXECUTION="
    )
    assert args[3:] == [
        "--port=1",
        "--dashboard-host=127.0.0.1",
        "--dashboard-port=2",
        "--node-ip-address=10.0.0.5",
        "--num-cpus=3",
        '--resources={"sweep_slot": 5}',
    ]


@pytest.mark.parametrize("slots", ["0", "two", "-1", "1.5"])
def test_head_refuses_a_slot_count_that_is_not_a_positive_whole_number(
    slots: str, tmp_path: Path, fake_cli: Path
) -> None:
    result = run(
        "start-head.sh", tmp_path, RAY_CMD=str(fake_cli), RAY_AUTH_TOKEN="t", SWEEP_MAX_RUNNING_SWEEPS=slots
    )
    assert result.returncode == 2
    assert "SWEEP_MAX_RUNNING_SWEEPS" in result.stderr and f"'{slots}'" in result.stderr
    assert result.stdout == ""


def test_worker_joins_the_compose_head_by_default(tmp_path: Path, fake_cli: Path) -> None:
    result = run(
        "start-worker.sh", tmp_path, "--x", RAY_CMD=str(fake_cli), RAY_AUTH_TOKEN="t", RAY_NUM_CPUS="2"
    )
    exported, *args = result.stdout.splitlines()
    assert exported.startswith("RAY_AUTH_MODE=token ")
    assert args == ["start", "--block", "--address=ray-head:6379", "--num-cpus=2", "--x"]


def test_ray_cmd_may_be_an_interpreter_and_module(tmp_path: Path, fake_cli: Path) -> None:
    result = run("start-worker.sh", tmp_path, RAY_CMD=f"sh {fake_cli} -m", RAY_AUTH_TOKEN="t")
    assert result.stdout.splitlines()[1:3] == ["-m", "start"]


def test_mlflow_migrates_then_serves(tmp_path: Path, fake_cli: Path) -> None:
    uri = "postgresql+psycopg2://u:p@db:5432/mlflow"
    result = run("start-mlflow.sh", tmp_path, "--dev", MLFLOW_CMD=str(fake_cli), MLFLOW_BACKEND_STORE_URI=uri)
    lines = result.stdout.splitlines()
    assert lines[1:4] == ["db", "upgrade", uri]
    assert lines[5:] == [
        "server",
        "--backend-store-uri",
        uri,
        "--artifacts-destination",
        "/mlartifacts",
        "--serve-artifacts",
        "--host",
        "0.0.0.0",
        "--port",
        "5000",
        "--allowed-hosts",
        "mlflow,mlflow:*,localhost,localhost:*,127.0.0.1,127.0.0.1:*",
        "--workers",
        "2",
        "--dev",
    ]


@pytest.mark.parametrize(("given", "exported"), [(None, "false"), ("true", "true")])
def test_mlflow_s_job_runner_is_off_unless_asked_for(
    given: str | None, exported: str, tmp_path: Path, fake_cli: Path
) -> None:
    asked = {} if given is None else {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": given}
    uri = "sqlite:///m.db"
    result = run("start-mlflow.sh", tmp_path, MLFLOW_CMD=str(fake_cli), MLFLOW_BACKEND_STORE_URI=uri, **asked)
    # the fake prints the variables it was given once for `db upgrade`, once for `server`
    given_to = [line for line in result.stdout.splitlines() if line.startswith("RAY_AUTH_MODE=")]
    assert len(given_to) == 2
    assert all(line.endswith(f" MLFLOW_SERVER_ENABLE_JOB_EXECUTION={exported}") for line in given_to)


def test_mlflow_needs_a_backend_store(tmp_path: Path, fake_cli: Path) -> None:
    result = run("start-mlflow.sh", tmp_path, MLFLOW_CMD=str(fake_cli))
    assert result.returncode != 0
    assert "MLFLOW_BACKEND_STORE_URI" in result.stderr
    assert result.stdout == ""
