"""Imports run downhill: the REST service and `sweep reproduce` never load Ray Tune or TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("ray.tune", "tensorflow", "keras")


@pytest.mark.parametrize(
    "module",
    [
        "sweep.jobs",  # the REST service's POST names and submits a sweep with it
        "sweep.sweep_dir",
        "sweep.reproduce",  # trains one trial here, without Ray
        "services.api.app",
        "services.api.serve",
        "sweep.cli",
    ],
)
def test_module_does_not_import_ray_tune_or_tensorflow(module: str) -> None:
    code = f"import json, sys; import {module}; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_submitting_a_sweep_names_it_without_ray_tune() -> None:
    # The REST service's first POST: an id for the sweep, then the Jobs API (refused here).
    code = (
        "import json, sys\n"
        "from sweep import jobs\n"
        "from sweep.spec import load_spec\n"
        f"spec = load_spec({str(ROOT / 'examples' / 'quick.yaml')!r})\n"
        "try:\n"
        "    jobs.submit_spec(spec, address='http://127.0.0.1:1')\n"
        "except jobs.JobError:\n"
        "    pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
