"""`sweep serve`'s start: the service's settings, and the environment they give MLflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.api.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

# `sweep serve` as a shell starts it, up to the point where uvicorn would take over: uvicorn.run
# is replaced by a probe that prints the MLflow client's settings as MLflow itself reads them.
SERVE_UNTIL_UVICORN = """
import json, sys
import uvicorn
from mlflow import environment_variables as mlflow_env

def probe(app, **kwargs):
    names = ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    print(json.dumps({name: getattr(mlflow_env, name).get() for name in names}))

uvicorn.run = probe
sys.argv = ["sweep", "serve", "--port", "8765"]
from sweep.cli import main
main()
"""


def serve_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SWEEP_", "RAY_"))}
    # A named cluster and tracking server: no local Ray head starts, and nothing is contacted.
    cluster = {"SWEEP_RAY_ADDRESS": "http://127.0.0.1:1", "SWEEP_TRACKING_URI": "http://127.0.0.1:1"}
    return {**env, "PYTHONPATH": str(ROOT), **cluster, **extra}


def serve_until_uvicorn(**env: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SERVE_UNTIL_UVICORN],
        env=serve_env(**env),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_serve_gives_mlflow_requests_the_services_20_s_timeout() -> None:
    # On main the library's 60 s, set at import, won over the service's later setdefault.
    assert serve_until_uvicorn() == {"MLFLOW_HTTP_REQUEST_TIMEOUT": 20, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": 2}


def test_serve_keeps_an_mlflow_timeout_its_caller_set() -> None:
    assert serve_until_uvicorn(MLFLOW_HTTP_REQUEST_TIMEOUT="7")["MLFLOW_HTTP_REQUEST_TIMEOUT"] == 7


def test_the_services_settings_extend_the_librarys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWEEP_TRACKING_PATIENCE_S", "30")
    monkeypatch.setenv("SWEEP_RUNS_DIR", "/data/runs")
    settings = Settings()
    assert settings.tracking_patience_s == 30.0
    assert settings.job_runs_dir == "/data/runs"
    assert settings.environment()["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"  # the library's
