"""A trial table read from CSV: typed as the analysis takes it, or every problem located at once."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sweep.analysis import analyse
from sweep.report import TrialTableError, read_curves_csv, read_trials_csv
from sweep.results import TRIAL_COLUMNS

PLACEMENTS = ("before_activation", "after_dropout", "none")
OPTIMIZERS = ("adam", "sgd")
MINIMAL = ["status", "placement", "dropout", "optimizer", "seed", "final_val_accuracy"]


def trial_table(seeds: int = 4) -> pd.DataFrame:
    """The columns `sweep results --csv` writes; after_dropout 3 points worse, one trial failed."""
    rng = np.random.default_rng(7)
    rows = []
    for seed in range(seeds):
        for dropout in (0.1, 0.5):
            for optimizer in OPTIMIZERS:
                for placement in PLACEMENTS:
                    acc = 0.9 - 0.03 * (placement == "after_dropout") + rng.normal(0, 0.004)
                    run_id = f"{placement[:3]}{dropout}{optimizer}{seed}"
                    row = dict.fromkeys(TRIAL_COLUMNS, math.nan)
                    row |= {
                        "run_id": run_id,
                        "trial_id": run_id,
                        "name": run_id,
                        "status": "FINISHED",
                        "placement": placement,
                        "dropout": dropout,
                        "optimizer": optimizer,
                        "optimizer_name": optimizer,
                        "seed": seed,
                        "phase": "",
                        "final_val_accuracy": acc,
                        "best_val_accuracy": acc + 0.002,
                        "final_val_loss": 1.1 - acc,
                        "epochs_completed": 5.0,
                        "error": None,
                    }
                    rows.append(row)
    table = pd.DataFrame(rows, columns=TRIAL_COLUMNS)
    table.loc[1, ["status", "final_val_accuracy", "final_val_loss", "error"]] = [
        "FAILED",
        math.nan,
        math.nan,
        'TrialDiverged: loss is nan\nat epoch 1, "quoted"',  # a field over two lines
    ]
    return table


def write(tmp_path: Path, text: str | bytes, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def problems(path: Path, **kwargs) -> list[str]:
    with pytest.raises(TrialTableError) as caught:
        read_trials_csv(path, PLACEMENTS, OPTIMIZERS, **kwargs)
    assert caught.value.source == str(path)
    return caught.value.errors


def test_the_table_sweep_results_writes_reads_back_to_the_same_verdict(tmp_path: Path) -> None:
    table = trial_table()
    table.to_csv(tmp_path / "t.csv", index=False)  # as `sweep results --csv` does
    read = read_trials_csv(tmp_path / "t.csv", PLACEMENTS, OPTIMIZERS)
    assert list(read.columns) == TRIAL_COLUMNS
    assert read["seed"].dtype.kind == "i" and read["dropout"].dtype.kind == "f"
    assert read.loc[1, "error"].startswith("TrialDiverged") and read.loc[0, "phase"] == ""
    before, after = analyse(table), analyse(read)
    assert [(c.placement, c.outcome) for c in after.comparisons] == [
        (c.placement, c.outcome) for c in before.comparisons
    ]
    assert ("after_dropout", "worse") in [(c.placement, c.outcome) for c in after.comparisons]
    assert after.verdict == before.verdict


def test_the_six_required_columns_are_enough(tmp_path: Path) -> None:
    table = trial_table()
    table[MINIMAL].to_csv(tmp_path / "t.csv", index=False)
    read = read_trials_csv(tmp_path / "t.csv", PLACEMENTS, OPTIMIZERS)
    assert read["run_id"].is_unique and read["run_id"].iloc[0] == "line-2"
    assert read["final_val_loss"].isna().all()
    full, minimal = analyse(table), analyse(read)
    assert [(c.outcome, c.n_pairs) for c in minimal.comparisons] == [
        (c.outcome, c.n_pairs) for c in full.comparisons
    ]
    assert minimal.n_trials == len(table) and minimal.placement("none").n_finished == 16


def test_statuses_are_read_in_any_case_and_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    table = trial_table()[MINIMAL].assign(status="finished")
    path = write(tmp_path, "\ufeff" + table.to_csv(index=False))
    read = read_trials_csv(path, PLACEMENTS, OPTIMIZERS)
    assert set(read["status"]) == {"FINISHED"} and "status" in read.columns


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "empty file: expected a CSV header row with at least status, placement"),
        ("\n  \n", "empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "byte 8: binary data (a NUL byte), not a CSV text file"),
        (b"status,placement\n\xff\xfe", "byte 17: not UTF-8 text"),
        ("just some prose\nnot a table at all\n", "line 1: missing column(s) status, placement, dropout"),
        (",".join(MINIMAL) + "\n", "no trials: the header is the only row"),
        (",".join(MINIMAL) + ",seed\n", "line 1: the column 'seed' appears twice"),
        ('status,placement\n"FINISHED,none\n', "not CSV (unexpected end of data)"),
    ],
    ids=["empty", "blank", "binary", "not-utf8", "prose", "header-only", "duplicate-column", "open-quote"],
)
def test_what_is_no_trial_table_is_refused_with_its_place(tmp_path: Path, content, expected) -> None:
    assert any(expected in e for e in problems(write(tmp_path, content)))


def test_a_missing_column_names_it_and_what_the_header_has(tmp_path: Path) -> None:
    trial_table()[[c for c in MINIMAL if c != "seed"]].to_csv(tmp_path / "t.csv", index=False)
    (error,) = problems(tmp_path / "t.csv")
    assert error.startswith("line 1: missing column(s) seed (the header has 'status', 'placement'")
    assert "needs at least status, placement, dropout, optimizer, seed, final_val_accuracy" in error


def test_every_bad_cell_is_reported_at_once_with_line_column_value_and_rule(tmp_path: Path) -> None:
    table = trial_table().astype(object)
    # Row i of the table is on line i + 2, the failed trial's error field spanning lines 3-4.
    table.loc[2, "dropout"] = "abc"
    table.loc[3, "placement"] = "between"
    table.loc[4, "seed"] = 1.5
    table.loc[5, "final_val_accuracy"] = 93.2
    table.loc[6, "status"] = "DONE"
    table.loc[7, "optimizer"] = "lion"
    table.loc[8, "final_test_accuracy"] = "high"
    table.to_csv(tmp_path / "t.csv", index=False)
    errors = problems(tmp_path / "t.csv")
    assert errors == [
        "line 5, column dropout: must be a number >= 0 and < 1 (got 'abc')",
        "line 6, column placement: must be one of before_activation, after_dropout, none (got 'between')",
        "line 7, column seed: must be a whole number >= 0 (got '1.5')",
        "line 8, column final_val_accuracy: must be a number >= 0 and <= 1 (a fraction, not a "
        "percentage) (got '93.2')",
        "line 9, column status: must be one of FINISHED, FAILED, KILLED, RUNNING, SCHEDULED (got 'DONE')",
        "line 10, column optimizer: must be one of adam, sgd (got 'lion')",
        "line 11, column final_test_accuracy: must be a number >= 0 and <= 1, or empty (got 'high')",
    ]


def test_short_rows_duplicate_run_ids_and_many_errors_are_located_and_capped(tmp_path: Path) -> None:
    lines = trial_table()[[*MINIMAL, "run_id"]].to_csv(index=False).splitlines()
    lines[2] = lines[2].rsplit(",", 2)[0]
    lines[5] = ",".join([*lines[5].split(",")[:-1], lines[4].split(",")[-1]])
    errors = problems(write(tmp_path, "\n".join(lines) + "\n"))
    assert errors == ["line 3: 5 fields, but the header has 7"]  # duplicates are checked on good rows
    lines[2] = lines[1]
    errors = problems(write(tmp_path, "\n".join(lines) + "\n"))
    assert errors[0].startswith("line 3, column run_id: ") and errors[0].endswith("is already on line 2")
    lines = [lines[0]] + [line.replace(",0.5,", ",5,") for line in lines[1:]]
    errors = problems(write(tmp_path, "\n".join(lines) + "\n"))
    assert len(errors) == 21 and errors[-1] == "... and 4 more problem(s)"  # 24 trials at dropout 0.5
    assert all("column dropout: must be a number >= 0 and < 1" in e for e in errors[:20])


def test_a_table_without_a_finished_trial_is_refused(tmp_path: Path) -> None:
    trial_table().assign(status="FAILED").to_csv(tmp_path / "t.csv", index=False)
    assert problems(tmp_path / "t.csv") == ["no FINISHED trial (48 FAILED): there is nothing to analyse"]


def test_curves_need_run_ids_that_the_table_has(tmp_path: Path) -> None:
    trial_table()[MINIMAL].to_csv(tmp_path / "t.csv", index=False)
    assert "missing column(s) run_id" in problems(tmp_path / "t.csv", with_curves=True)[0]
    curves = write(tmp_path, "run_id,epoch,val_accuracy\nbef0.1adam0,1,0.5\nnobody,2,0.6\nbef0.1adam0,x,\n")
    with pytest.raises(TrialTableError) as caught:
        read_curves_csv(curves, trial_table()["run_id"])
    assert caught.value.errors == [
        "line 3, column run_id: must be a run_id of the trial table (got 'nobody')",
        "line 4, column epoch: must be a whole number >= 0 (got 'x')",
    ]
    good = write(tmp_path, "run_id,epoch,val_accuracy,val_loss\nbef0.1adam0,1,0.5,\n", "c.csv")
    read = read_curves_csv(good, trial_table()["run_id"])
    assert read.to_dict("records") == [
        {
            "run_id": "bef0.1adam0",
            "epoch": 1,
            "val_accuracy": 0.5,
            "val_loss": pytest.approx(math.nan, nan_ok=True),
        }
    ]


def test_a_missing_file_or_a_folder_is_said_so(tmp_path: Path) -> None:
    assert problems(tmp_path / "nope.csv") == ["file not found"]
    assert problems(tmp_path) == ["is a directory, not a CSV file"]
