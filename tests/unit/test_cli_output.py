"""What the CLI prints, as a user sees it: whole ids in a narrow terminal, no TensorFlow noise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from sweep.cli.render import best_table
from sweep.spec import parse_spec
from sweep.tracking import SweepTracker, local_tracking_uri

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_IDS = ("289331af9e5f4b9c8a7d6e5f4c3b2a19", "e487fefe14aa4b9c8a7d6e5f4c3b2a18")


def sweep_cli(*args: str, columns: int = 80, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run(
        [sys.executable, "-m", "sweep", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


@pytest.mark.parametrize("width", [60, 80, 250])
def test_the_best_trials_table_prints_run_ids_and_placements_whole(width: int) -> None:
    trials = pd.DataFrame(
        {
            "status": ["FINISHED", "FINISHED"],
            "placement": ["after_activation", "before_activation"],
            "dropout": [0.25, 0.0],
            "optimizer": ["adam", "sgd-nesterov"],
            "seed": [0, 2],
            "final_val_accuracy": [0.8667, 0.85],
            "epochs_completed": [3.0, 20.0],
            "run_id": list(RUN_IDS),
        }
    )
    console = Console(width=width, record=True)
    console.print(best_table(trials, "val_accuracy", "max"))
    out = console.export_text()
    assert max(len(line) for line in out.splitlines()) <= width
    for whole in (*RUN_IDS, "after_activation", "before_activation"):
        assert whole in out, out


def test_sweep_list_prints_sweep_ids_and_parent_runs_whole_in_80_columns(tmp_path: Path) -> None:
    spec = parse_spec({"name": "quick", "dataset": {"source": "synthetic"}})
    tracker = SweepTracker(local_tracking_uri(tmp_path), spec, "quick-20261202-192332-9bd0", tmp_path)
    tracker.start_sweep()
    listed = sweep_cli("list", "--runs-dir", str(tmp_path))
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "quick-20261202-192332-9bd0" in listed.stdout, listed.stdout
    assert tracker.parent_run_id in listed.stdout, listed.stdout
    assert max(len(line) for line in listed.stdout.splitlines()) <= 80


def test_show_model_prints_its_table_and_nothing_from_tensorflow(tmp_path: Path) -> None:
    shown = sweep_cli("show-model", str(EXAMPLES / "quick.yaml"), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "block1_bn" in shown.stdout and "parameters: 258" in shown.stdout
    assert shown.stderr == ""  # was: absl's warning, "Could not find cuda drivers", E0000 cuInit
