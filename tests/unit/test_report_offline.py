"""`sweep report --trials FILE.csv --spec SPEC.yaml`: the whole report from files, without Ray or MLflow."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sweep.cli import app

SPEC = """\
name: table-test
search:
  placement: [before_activation, after_dropout, none]
  dropout: [0.1, 0.5]
  optimizer: [{name: adam}, {name: sgd, label: slow}]
  seeds: 4
analysis:
  equivalence_margin: 1.5
"""
HEAVY = ("ray", "mlflow", "tensorflow", "keras")
# Runs the CLI in a fresh interpreter and says at exit which heavy packages it imported.
PROBE = (
    "import atexit, sys\n"
    f"heavy = {HEAVY!r}\n"
    "atexit.register(lambda: print('IMPORTED', [m for m in heavy if m in sys.modules], file=sys.stderr))\n"
    "from sweep.cli import main\n"
    "sys.argv = ['sweep', *sys.argv[1:]]\n"
    "main()\n"
)


def write_inputs(folder: Path) -> tuple[Path, Path, Path]:
    """A spec, its trial table (after_dropout 3 points worse than the others) and their curves."""
    rng = np.random.default_rng(3)
    trials, curves = [], []
    for seed in range(4):
        for dropout in (0.1, 0.5):
            for optimizer in ("adam", "slow"):
                for placement in ("before_activation", "after_dropout", "none"):
                    acc = 0.9 - 0.03 * (placement == "after_dropout") + rng.normal(0, 0.004)
                    run_id = f"r{len(trials)}"
                    trials.append(
                        {
                            "run_id": run_id,
                            "status": "FINISHED",
                            "placement": placement,
                            "dropout": dropout,
                            "optimizer": optimizer,
                            "seed": seed,
                            "final_val_accuracy": acc,
                            "final_val_loss": 1.1 - acc,
                        }
                    )
                    curves += [
                        {"run_id": run_id, "epoch": e, "val_accuracy": acc * (1 - math.exp(-e))}
                        for e in (1, 2, 3)
                    ]
    (folder / "spec.yaml").write_text(SPEC)
    pd.DataFrame(trials).to_csv(folder / "trials.csv", index=False)
    pd.DataFrame(curves).to_csv(folder / "curves.csv", index=False)
    return folder / "trials.csv", folder / "spec.yaml", folder / "curves.csv"


def run_cli(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_a_trial_table_gets_the_whole_report_without_ray_mlflow_or_tensorflow(tmp_path: Path) -> None:
    trials, spec, curves = write_inputs(tmp_path)
    done = run_cli(
        "report", "--trials", trials, "--spec", spec, "--curves", curves, "--out", "rep", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "IMPORTED []" in done.stderr
    out = tmp_path / "rep"
    assert {p.name for p in out.iterdir()} >= {"report.md", "report.html", "analysis.json", "forest.png"}
    assert (out / "learning_curves.png").is_file()  # the curves were matched to the trials
    data = json.loads((out / "analysis.json").read_text())
    assert data["equivalence_margin"] == 1.5  # the spec's analysis settings
    outcomes = {(c["placement"], c["reference"]): c["outcome"] for c in data["outcomes"]["comparisons"]}
    assert outcomes == {("before_activation", "none"): "equivalent", ("after_dropout", "none"): "worse"}
    assert {c["outcome"] for c in data["outcomes"]["cells"]} <= {
        "better",
        "worse",
        "equivalent",
        "cannot tell",
    }
    assert len(data["outcomes"]["cells"]) == 2 * 4  # two comparisons, four dropout x optimizer cells
    assert data["answer"][1].startswith("after_dropout is worse than none by at least 2.3 points")
    assert "after_dropout is worse than none by at least 2.3" in done.stdout.split("The answer")[-1]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x00\x01\x02garbage\xff", "trials.csv: byte 0: binary data (a NUL byte), not a CSV text file"),
        (
            "status,placement\nFINISHED,none\n",
            "trials.csv: line 1: missing column(s) dropout, optimizer, seed",
        ),
    ],
    ids=["binary", "missing-columns"],
)
def test_a_malformed_table_exits_2_with_its_place_and_no_traceback(tmp_path: Path, content, expected) -> None:
    _, spec, _ = write_inputs(tmp_path)
    path = tmp_path / "trials.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    done = run_cli("report", "--trials", path, "--spec", spec, "--out", "rep", cwd=tmp_path)
    assert done.returncode == 2
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert "IMPORTED []" in done.stderr and not (tmp_path / "rep").exists()


def test_bad_cells_a_bad_spec_and_missing_options_are_refused_with_exit_2(tmp_path: Path) -> None:
    trials, spec, _ = write_inputs(tmp_path)
    runner = CliRunner()
    table = pd.read_csv(trials)
    table.loc[4, "placement"] = "between"
    table.to_csv(tmp_path / "bad.csv", index=False)
    done = runner.invoke(app, ["report", "--trials", str(tmp_path / "bad.csv"), "--spec", str(spec)])
    assert done.exit_code == 2
    assert "bad.csv: line 6, column placement: must be one of before_activation, after_dropout, none" in (
        " ".join(done.output.split())
    )
    (tmp_path / "bad.yaml").write_text("name: Bad Name\n")
    done = runner.invoke(app, ["report", "--trials", str(trials), "--spec", str(tmp_path / "bad.yaml")])
    assert done.exit_code == 2 and "bad.yaml: name:" in done.output
    done = runner.invoke(app, ["report", "--trials", str(trials)])
    assert done.exit_code == 2 and "--trials FILE.csv needs --spec SPEC.yaml" in done.output
    done = runner.invoke(app, ["report"])
    assert done.exit_code == 2 and "give a SWEEP_ID, or --trials FILE.csv" in done.output


def test_an_adaptive_sweeps_table_is_reported_with_its_intervals_descriptive(tmp_path: Path) -> None:
    from sweep.report import report_trials_csv
    from sweep.spec import load_spec

    trials, spec, _ = write_inputs(tmp_path)
    spec.write_text(SPEC.replace("seeds: 4", "seeds: {min: 3, max: 6}"))
    done = report_trials_csv(trials, load_spec(spec), tmp_path / "rep")
    assert done.analysis.adaptive is not None and done.analysis.adaptive.trials_run == 48
    assert any("Seeds were added adaptively" in s and "descriptive" in s for s in done.analysis.verdict)
    markdown = done.files.markdown.read_text()
    assert (
        "## Adaptive seeds" in markdown
        and "not in a trial table: `sweep report SWEEP_ID` shows them" in markdown
    )


@pytest.mark.parametrize(("stated", "scope"), [(None, "Each seed drew its own"), (False, "were fixed")])
def test_the_verdict_speaks_for_the_rows_the_specs_split_drew(
    tmp_path: Path, stated: bool | None, scope: str
) -> None:
    """The spec says whether each seed drew its own rows (its default: yes), as the sweep's report does."""
    from sweep.report import report_trials_csv
    from sweep.spec import load_spec

    trials, spec, _ = write_inputs(tmp_path)
    if stated is not None:
        spec.write_text(SPEC + f"dataset:\n  split_per_seed: {str(stated).lower()}\n")
    done = report_trials_csv(trials, load_spec(spec), tmp_path / "rep")
    assert [s for s in done.analysis.verdict if "rows" in s and scope in s]
    assert not [s for s in done.analysis.verdict if "is not known to this analysis" in s]
