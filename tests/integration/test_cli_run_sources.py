"""`sweep run` on the sources that read data (an image folder, a python loader), then `sweep resume`:
real processes, a real local Ray and MLflow store, tiny data, one epoch."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient
from PIL import Image
from sweep_runs import trial_runs

pytestmark = pytest.mark.slow

SWEEP = [sys.executable, "-m", "sweep.cli"]
SEARCH = (
    "search:\n  placement: [before_activation, none]\n  dropout: [0.0]\n"
    "  optimizer:\n    - {name: adam, learning_rate: 0.01}\n  seeds: 1\n"
    "training: {epochs: 1, batch_size: 8}\ntracking: {experiment: sources}\n"
)


def _sweep(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*SWEEP, *args], capture_output=True, text=True, timeout=600, cwd=cwd)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def _children(runs: Path, sweep_id: str) -> list:
    return trial_runs(MlflowClient(f"sqlite:///{runs / 'mlflow.db'}"), sweep_id)


def _run_to_the_end(spec: Path, runs: Path, cwd: Path) -> str:
    """`sweep run` on `spec` with both trials finished; its sweep id."""
    run = _sweep("run", str(spec), "--runs-dir", str(runs), "--cpus", "1", cwd=cwd)
    assert re.search(r"state\s+finished: 2 finished, 0 failed", run.stdout), run.stdout[-3000:]
    return re.search(r"sweep id\s+(\S+)", run.stdout).group(1)


def test_a_cnn_sweep_on_an_image_folder_runs_and_resumes_from_its_own_copy(tmp_path: Path) -> None:
    for k, name in enumerate(("circle", "square")):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(16):
            Image.new("L", (10, 10), 60 * k + i).save(tmp_path / "imgs" / name / f"{i}.png")
    spec = tmp_path / "images.yaml"
    spec.write_text(
        "name: images\ndataset:\n  source: image_folder\n  path: imgs\n  image_size: [8, 8]\n"
        "  color_mode: grayscale\n  validation_split: 0.25\n"
        "model: {kind: cnn, hidden_units: [4], activation: relu}\n" + SEARCH
    )
    runs = tmp_path / "runs"
    sweep_id = _run_to_the_end(spec, runs, tmp_path)
    children = _children(runs, sweep_id)
    assert sorted(r.data.params["placement"] for r in children) == ["before_activation", "none"]
    assert {r.info.status for r in children} == {"FINISHED"}
    # The folder went with the sweep: the saved spec names the copy, and a resume reads it
    saved = yaml.safe_load((runs / sweep_id / "spec.yaml").read_text())
    assert saved["dataset"]["path"] == "data/imgs"
    assert sorted(p.name for p in (runs / sweep_id / "data" / "imgs").iterdir()) == ["circle", "square"]
    shutil.rmtree(tmp_path / "imgs")
    resumed = _sweep("resume", sweep_id, "--runs-dir", str(runs), cwd=tmp_path)
    assert "data fingerprint" not in resumed.stdout + resumed.stderr  # the same data: not refused
    again = _children(runs, sweep_id)
    assert len(again) == 2


def test_a_sweep_on_a_python_loader_runs_with_its_args_and_max_rows(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "blobs.py").write_text(
        "import numpy as np\n\n\ndef load(n, shift):\n"
        "    rng = np.random.default_rng(0)\n"
        "    y = np.arange(n) % 2\n"
        "    return rng.normal(size=(n, 6)) + shift * y[:, None], y\n"
    )
    spec = tmp_path / "loader.yaml"
    spec.write_text(
        "name: loader\ndataset:\n  source: python\n  loader: code/blobs.py:load\n"
        "  args: {n: 400, shift: 2.0}\n  max_rows: 80\n  test_split: 0.2\n"
        "model: {hidden_units: [8], activation: relu}\n" + SEARCH
    )
    runs = tmp_path / "runs"
    sweep_id = _run_to_the_end(spec, runs, tmp_path)
    children = _children(runs, sweep_id)
    assert {r.info.status for r in children} == {"FINISHED"}
    assert all("final_test_accuracy" in r.data.metrics for r in children)
    saved = yaml.safe_load((runs / sweep_id / "spec.yaml").read_text())
    # The saved spec names the sweep's own copy of the loader's folder (sweep.code_bundle), so a
    # resume or reproduce reads the same code wherever the sweep started.
    loader = saved["dataset"]["loader"]
    assert re.fullmatch(r"code/[0-9a-f]+/blobs\.py:load", loader), loader
    copy = runs / sweep_id / loader.rpartition(":")[0]
    assert copy.read_text() == (tmp_path / "code" / "blobs.py").read_text()
    assert saved["dataset"]["args"] == {"n": 400, "shift": 2.0}
    assert saved["dataset"]["max_rows"] == 80
