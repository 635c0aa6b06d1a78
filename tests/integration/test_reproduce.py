"""`sweep reproduce` and the data fingerprint, as a user meets them: real processes, Ray, MLflow."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sweep_runs import trial_runs

from sweep.reproducibility import DATA_FINGERPRINT, SPEC_HASH, TAGS, TRIAL_HASH
from sweep.results import find_sweep
from sweep.store import SweepStore

pytestmark = pytest.mark.slow

SWEEP = [sys.executable, "-m", "sweep.cli"]
os.environ["COLUMNS"] = "250"  # rich tables at full width in captured output

SPEC = """\
name: repro
dataset:
  source: npz
  path: data.npz
model:
  hidden_units: [16, 8]
  activation: relu
search:
  placement: [before_activation, after_dropout]
  dropout: [0.5]
  optimizer:
    - {name: sgd, learning_rate: 0.05, momentum: 0.9}
  seeds: 1
training:
  epochs: 3
  batch_size: 16
tracking:
  experiment: repro
"""


def _sweep(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SWEEP, *args], capture_output=True, text=True, timeout=600)


def test_a_trial_reproduces_exactly_and_changed_data_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 6)).astype(np.float32)
    np.savez(tmp_path / "data.npz", x=x, y=(x[:, 0] + x[:, 1] > 0).astype(int))
    (tmp_path / "spec.yaml").write_text(SPEC)
    runs = tmp_path / "runs"
    # One CPU: both trials run one after the other, the second on the reused worker of the first.
    ran = _sweep("run", str(tmp_path / "spec.yaml"), "--runs-dir", str(runs), "--cpus", "1")
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    sweep_id = re.search(r"sweep id\s+(\S+)", ran.stdout).group(1)

    client = MlflowClient(f"sqlite:///{runs / 'mlflow.db'}")
    record = find_sweep(client, sweep_id, with_spec=False)
    parent = client.get_run(record.parent_run_id).data.tags
    children = SweepStore(client).trial_runs(record)
    assert len(children) == 2
    for child in children:
        tags = child.data.tags
        assert set(TAGS) <= tags.keys()
        assert tags[DATA_FINGERPRINT] == parent[DATA_FINGERPRINT]
        assert tags[SPEC_HASH] == parent[SPEC_HASH]
        assert tags["repro.tensorflow"] not in ("", "absent")
    assert children[0].data.tags[TRIAL_HASH] != children[1].data.tags[TRIAL_HASH]

    for child in children:
        again = _sweep("reproduce", child.info.run_id, "--runs-dir", str(runs))
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
        # every final figure the run kept is compared: the four curves' last values, the BN
        # variance shift and the recalibrated accuracy (both placements have BN)
        compared = {m for m in child.data.metrics if m.startswith("final_") or m.startswith("bn_variance")}
        assert f"identical: all {len(compared)} metrics match exactly" in again.stdout
        assert "final_val_accuracy_bn_recalibrated" in again.stdout
        assert str(child.data.metrics["final_val_loss"]) in again.stdout  # the recorded value, in full

    not_a_trial = _sweep("reproduce", record.parent_run_id, "--runs-dir", str(runs))
    assert not_a_trial.returncode == 2
    assert "is not a trial's run" in not_a_trial.stderr
    unknown = _sweep("reproduce", "0123456789abcdef0123456789abcdef", "--runs-dir", str(runs))
    assert unknown.returncode == 2
    assert "no run '0123456789abcdef0123456789abcdef'" in unknown.stderr

    # The sweep's own copy of the data changes: resume and reproduce refuse, naming the fingerprint.
    copy = runs / sweep_id / "data" / "data.npz"
    x[0, 0] += 1.0
    np.savez(copy, x=x, y=(x[:, 0] + x[:, 1] > 0).astype(int))
    resumed = _sweep("resume", sweep_id, "--runs-dir", str(runs), "--cpus", "1")
    assert resumed.returncode == 2, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert "data fingerprint" in resumed.stderr
    assert "Traceback" not in resumed.stdout + resumed.stderr
    after = client.get_run(record.parent_run_id)
    assert after.info.status == "FINISHED"  # the refused resume reopened nothing
    assert after.data.tags["sweep.state"] == "finished"
    refused = _sweep("reproduce", children[0].info.run_id, "--runs-dir", str(runs))
    assert refused.returncode == 2
    assert "data fingerprint" in refused.stderr


def test_a_trial_of_the_quick_example_reproduces_from_the_folder_it_ran_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The spec leaves resources at their defaults (issue 19: every trial of it was refused as
    # "spec no longer gives this trial's recorded identity"), and an override changes its split.
    monkeypatch.chdir(tmp_path)
    example = Path(__file__).parents[2] / "examples" / "quick.yaml"
    ran = _sweep("run", str(example), "--set", "dataset.test_split=0.2", "--cpus", "2")
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    sweep_id = re.search(r"sweep id\s+(\S+)", ran.stdout).group(1)
    children = trial_runs(MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"), sweep_id)
    assert len(children) == 4
    child = next(c for c in children if c.data.params["placement"] == "before_activation")
    again = _sweep("reproduce", child.info.run_id)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert "identical: all" in again.stdout
    assert str(child.data.metrics["final_test_accuracy"]) in again.stdout
