"""The library's settings: SWEEP_* variables, the tracking URI's precedence, and the environment
MLflow, Ray and Tune get at entry points only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweep.cli import app
from sweep.retrying import RetryingClient
from sweep.settings import Settings, apply_environment, local_tracking_uri
from sweep.store.template import template_path

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENT = Settings().environment()


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what the settings set: as a fresh shell has it."""
    # RAY_CLIENT_MODE: Ray sets it at its import, here too once a test imported Ray.
    drop = {*ENVIRONMENT, *Settings().worker_env(), "MLFLOW_TRACKING_URI", "RAY_CLIENT_MODE"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("SWEEP_")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def python(code: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env=clean_env(**env), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_tracking_uri_is_the_flag_then_mlflows_variable_then_the_specs_then_the_local_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert Settings().resolve_tracking_uri(tmp_path, None, None) == local_tracking_uri(tmp_path)
    assert Settings().resolve_tracking_uri(tmp_path, None, "http://spec") == "http://spec"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env")
    assert Settings().resolve_tracking_uri(tmp_path, None, "http://spec") == "http://env"
    assert Settings().resolve_tracking_uri(tmp_path, "http://flag", "http://spec") == "http://flag"
    assert Settings().named_tracking_uri(None) == "http://env"


def test_sweep_variables_set_patience_cache_and_debug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEP_TRACKING_PATIENCE_S", "42")
    monkeypatch.setenv("SWEEP_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("SWEEP_DEBUG", "1")
    assert RetryingClient(object()).patience == 42.0
    assert template_path().parent == tmp_path
    assert Settings().debug is True


def test_without_sweep_variables_the_defaults_stand(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SWEEP_TRACKING_PATIENCE_S", "SWEEP_CACHE_DIR", "SWEEP_DEBUG", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.tracking_patience_s == 600.0
    assert settings.cache_folder() == Path.home() / ".cache" / "sweep"
    assert settings.debug is False


def test_a_bad_sweep_variable_is_a_located_error_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWEEP_TRACKING_PATIENCE_S", "soon")
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 2
    assert "SWEEP_TRACKING_PATIENCE_S: Input should be a valid number" in result.output
    assert "'soon'" in result.output
    assert "Traceback" not in result.output


def test_apply_environment_keeps_what_the_caller_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)  # restored after the test, as each was
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    apply_environment()
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "5"
    assert os.environ["RAY_AIR_NEW_OUTPUT"] == "0"


def test_importing_the_library_sets_no_environment() -> None:
    code = (
        "import json, os; before = dict(os.environ)\n"
        "import sweep.runner, sweep.tracking, sweep.results, sweep.retrying, sweep.reproduce, sweep.cli\n"
        "import services.api.app\n"
        "print(json.dumps(sorted(k for k in os.environ if os.environ[k] != before.get(k))))"
    )
    ours = {*ENVIRONMENT, *Settings().worker_env()}
    changed = json.loads(python(code))
    assert "RAY_CLIENT_MODE" in changed  # Ray's own, at its import: the check sees what changes
    assert [name for name in changed if name in ours] == []


def test_the_cli_applies_the_environment_before_its_command_runs() -> None:
    code = (
        "import json, os, sys\n"
        "from sweep.cli import app\n"
        "app(['schema'], standalone_mode=False)\n"
        f"print(json.dumps({{k: os.environ.get(k) for k in {sorted(ENVIRONMENT)!r}}}), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stderr.splitlines()[-1]) == ENVIRONMENT
