"""benchmarks/gpu.py without a GPU: it says so and exits 2; its --cpu dry run takes a GPU sweep's
whole path (fractional GPUs from Ray, mixed precision, the device on each run) on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BENCHMARK = ROOT / "benchmarks" / "gpu.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCHMARK), *args], cwd=ROOT, capture_output=True, text=True, timeout=900
    )


def test_without_a_gpu_it_says_so_and_exits_2() -> None:
    done = _run("--spec", "examples/quick.yaml")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "sees no GPU on this machine" in done.stderr and "(not run)" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_cpu_dry_run_shares_ray_s_gpu_between_trials_in_float32_and_mixed(tmp_path: Path) -> None:
    done = _run(
        "--cpu",
        "--spec", "examples/quick.yaml",
        "--set", "training.epochs=1",
        "--fractions", "0.5",
        "--cpus", "2",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = tmp_path.glob("gpu-quick-*.json")
    report = json.loads(result.read_text())
    assert report["dry_run_on_cpu"] is True and report["gpu"] is None
    runs = report["runs"]
    assert [(r["gpus_per_trial"], r["mixed_precision"]) for r in runs] == [(0.5, False), (0.5, True)]
    for run in runs:
        assert run["state"] == "finished" and run["finished"] == run["trials"] == 4
        assert run["gpu_ids"] == ["0"]  # Ray handed out its one GPU, half to each trial
        assert run["devices"] == ["cpu"]  # while TensorFlow, finding none, trained on the CPU
        assert run["trials_per_min"] > 0 and 0 <= run["mean_final_val_accuracy"] <= 1
    assert "trials per minute, dry run on the CPU (no GPU)" in done.stdout
