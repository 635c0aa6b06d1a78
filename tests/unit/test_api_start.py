"""services/start-api.sh: what it refuses and the `sweep serve` command line it runs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "services" / "start-api.sh"
REQUIRED = {
    "SWEEP_RAY_ADDRESS": "http://ray-head:8265",
    "SWEEP_TRACKING_URI": "http://mlflow:5000",
    "SWEEP_API_TOKEN": "t" * 32,
    "RAY_AUTH_TOKEN": "r",
}


def run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "fake-sweep"
    fake.write_text('#!/bin/sh\necho "RAY_AUTH_MODE=$RAY_AUTH_MODE"\nfor a in "$@"; do echo "$a"; done\n')
    fake.chmod(0o755)
    return subprocess.run(
        [str(SCRIPT)],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SWEEP_CMD": str(fake), **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_serves_every_interface_on_8000_with_ray_token_auth(tmp_path: Path) -> None:
    result = run(tmp_path, **REQUIRED)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "RAY_AUTH_MODE=token",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_refuses_to_start_without(tmp_path: Path, missing: str) -> None:
    result = run(tmp_path, **{k: v for k, v in REQUIRED.items() if k != missing})
    assert result.returncode != 0
    assert missing in result.stderr
    assert result.stdout == ""
