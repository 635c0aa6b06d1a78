"""`sweep serve` alone: no cluster named, it runs a Ray head of its own with a local MLflow store,
runs a sweep on it, and leaves no process behind when stopped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from api_server import ApiServer, until_ended

pytestmark = pytest.mark.slow


def marked_processes() -> list[int]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if any(
                v.startswith(b"SWEEP_SERVE_RAY_HEAD=") for v in (proc / "environ").read_bytes().split(b"\0")
            ):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_one_command_serves_with_its_own_ray_head_and_stops_it(tmp_path: Path) -> None:
    before = set(marked_processes())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWEEP_", "RAY_", "MLFLOW_TRACKING"))}
    env |= {
        "SWEEP_RUNS_DIR": str(tmp_path / "runs"),
        "SWEEP_RAY_CPUS": "2",
        "SWEEP_API_TOKEN": "local-token-0123456789",
    }
    server = ApiServer(tmp_path / "serve", env)
    with server:
        assert set(marked_processes()) - before  # the head and its processes
        spec = {
            "name": "laptop",
            "dataset": {"source": "iris"},
            "model": {"hidden_units": [8]},
            "search": {"placement": ["none"], "dropout": [0.0], "seeds": 2},
            "training": {"epochs": 2},
        }
        with server.client(Authorization="Bearer local-token-0123456789") as api:
            posted = api.post("/v1/sweeps", json=spec)
            assert posted.status_code == 202, posted.text
            done = until_ended(api, posted.json()["id"])
        assert done["status"] == "SUCCEEDED", done
        assert done["mlflow_url"] is None  # a local store has no UI URL
        assert (tmp_path / "runs" / "mlflow.db").is_file()
    assert set(marked_processes()) - before == set(), server.log()
