"""`sweep run` as a user runs it: a real process, a real local Ray and MLflow store."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cluster import mlflow_job_runner, processes_in_group, wait_for
from mlflow.tracking import MlflowClient
from sweep_runs import LocalStore, trial_runs

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SWEEP = [sys.executable, "-m", "sweep.cli"]
os.environ["COLUMNS"] = "250"  # rich tables at full width in captured output


def test_run_quick_example_then_read_results(tmp_path: Path) -> None:
    # --cpus 1: the local Ray gets one CPU, so the trials (1 CPU each) must run one at a time.
    run = subprocess.run(
        [*SWEEP, "run", str(ROOT / "examples" / "quick.yaml"), "--runs-dir", str(tmp_path), "--cpus", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    sweep_id = re.search(r"sweep id\s+(\S+)", run.stdout).group(1)
    assert re.search(r"state\s+finished: 4 finished, 0 failed", run.stdout)
    assert "best trials by val_accuracy" in run.stdout
    # It closes with the short answer, one sentence per compared placement (1 seed: 2 pairs).
    answer = run.stdout.split("The answer")[-1]
    assert "before_activation: this sweep cannot tell it from none" in answer
    assert "none is the reference" in answer and "report.html" in answer
    shown = subprocess.run(
        [*SWEEP, "results", sweep_id, "--runs-dir", str(tmp_path), "--csv", str(tmp_path / "t.csv")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("FINISHED") == 4
    assert (tmp_path / "t.csv").read_text().count("\n") == 5
    listed = subprocess.run([*SWEEP, "list", "--runs-dir", str(tmp_path)], capture_output=True, text=True)
    assert sweep_id in listed.stdout
    children = trial_runs(MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}"), sweep_id)
    spans = sorted((r.info.start_time, r.info.end_time) for r in children)
    assert len(spans) == 4
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_leaves_no_run_running(tmp_path: Path, stop: signal.Signals) -> None:
    """SIGINT (Ctrl-C) or SIGTERM (`ray job stop`, Kubernetes) mid-sweep: every MLflow run ends
    (KILLED), the exit code is not 0, and `sweep resume` finishes the sweep."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            *SWEEP,
            "run",
            str(ROOT / "examples" / "quick.yaml"),
            "--runs-dir",
            str(tmp_path),
            "--set",
            "training.epochs=20",  # 8 trials on 2 CPUs: the signal comes while most wait
            "--set",
            "search.seeds=2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    store = LocalStore(tmp_path)
    wait_for(store.running_trials, 300, "a trial started")
    proc.send_signal(stop)
    try:
        out, _ = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert "Traceback" not in out
    assert proc.returncode == 130, out[-2000:]
    assert "sweep resume" in out
    client = store.client
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, "")
    assert runs
    assert not [r for r in runs if r.info.status == "RUNNING"], out[-2000:]
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "KILLED"
    assert parent.data.tags["sweep.state"] == "interrupted"
    if stop == signal.SIGTERM:
        return  # the ctrl-c case resumes; once is enough

    resumed = subprocess.run(
        [*SWEEP, "resume", parent.data.tags["sweep.id"], "--runs-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    runs = client.search_runs(experiments, "tags.`mlflow.parentRunId` != ''")
    assert len(runs) == 8
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"


def test_ui_serves_the_local_store(tmp_path: Path) -> None:
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [*SWEEP, "ui", "--runs-dir", str(tmp_path), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None, "sweep ui exited"
                assert time.monotonic() < deadline, "sweep ui did not answer"
                time.sleep(0.5)
        # MLflow's job runner, which sweeps never use, stays off (sweep.settings)
        started = processes_in_group(proc.pid)
        assert len(started) > 1 and not mlflow_job_runner(started), started
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


NET = """\
import keras
from layers import hidden  # a neighbour module: the folder travels, not only this file

from sweep.blocks import block


def build(placement, dropout, input_shape, n_classes, width=4):
    inputs = keras.Input(input_shape)
    x = block(inputs, hidden(width), placement, dropout)
    return keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax", name="head")(x))
"""


def test_run_a_file_builder_then_reproduce_a_trial_from_the_sweeps_copy(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "models" / "net.py").write_text(NET)
    (project / "models" / "layers.py").write_text(
        "import keras\n\ndef hidden(width):\n    return keras.layers.Dense(width, name='hidden')\n"
    )
    (project / "spec.yaml").write_text(
        "name: builder-run\n"
        "dataset: {source: synthetic, n_samples: 200, n_features: 6, n_classes: 2}\n"
        "model: {kind: python, builder: models/net.py:build, args: {width: 5}}\n"
        "search: {placement: [before_activation, none], dropout: [0.2], "
        "optimizer: [{name: adam, learning_rate: 0.01}], seeds: 1}\n"
        "training: {epochs: 2, batch_size: 32}\n"
    )
    runs = tmp_path / "runs"
    run = subprocess.run(
        [*SWEEP, "run", str(project / "spec.yaml"), "--runs-dir", str(runs), "--cpus", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert re.search(r"state\s+finished: 2 finished, 0 failed", run.stdout)
    assert "oneDNN" not in run.stderr  # the driver's check of the builder keeps TensorFlow quiet
    sweep_id = re.search(r"sweep id\s+(\S+)", run.stdout).group(1)
    # The sweep keeps the builder's folder; its spec.yaml names the copy.
    (copy,) = (runs / sweep_id / "code").iterdir()
    assert sorted(p.name for p in copy.iterdir()) == ["layers.py", "net.py"]
    saved = (runs / sweep_id / "spec.yaml").read_text()
    assert f"builder: code/{copy.name}/net.py:build" in saved
    children = trial_runs(MlflowClient(f"sqlite:///{runs / 'mlflow.db'}"), sweep_id)
    assert len(children) == 2
    for child in children:
        assert child.data.tags["model.builder"] == f"code/{copy.name}/net.py:build"
        assert child.data.tags["model.args"] == '{"width": 5}'
    with_bn = next(c for c in children if c.data.params["placement"] == "before_activation")
    assert "bn_variance_shift" in with_bn.data.metrics  # measured on the builder's BN layer

    # The project's files gone: reproduce trains from the sweep's own copy, exactly.
    (project / "models" / "net.py").unlink()
    again = subprocess.run(
        [*SWEEP, "reproduce", with_bn.info.run_id, "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert "metrics match exactly" in again.stdout
