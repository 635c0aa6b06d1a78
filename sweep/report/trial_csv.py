"""A trial table from a CSV file (the columns `sweep results --csv` writes), checked cell by cell.

Pure: the csv module and pandas. Every problem is located (file, line, column), says what was
given and what is allowed, and all of them are collected into one `TrialTableError`. Line numbers
are the file's own (a quoted field may span lines), so an editor jumps to the right place.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pandas as pd

REQUIRED = ("status", "placement", "dropout", "optimizer", "seed", "final_val_accuracy")
STATUSES = ("FINISHED", "FAILED", "KILLED", "RUNNING", "SCHEDULED")  # MLflow's run statuses
FRACTIONS = (  # accuracies: fractions in [0, 1], empty where a trial has none
    "final_val_accuracy",
    "best_val_accuracy",
    "final_test_accuracy",
    "final_accuracy",
    "final_val_accuracy_bn_recalibrated",
    "final_test_accuracy_bn_recalibrated",
)
NUMBERS = (  # any number, empty where a trial has none
    "learning_rate",  # the block's; pairs blocks whose rates were drawn (without it: the label alone)
    "final_val_loss",
    "best_val_loss",
    "final_loss",
    "final_test_loss",
    "best_epoch",
    "epochs_completed",
    "duration_s",
    "train_time_s",
    "peak_rss_mb",
    "bn_variance_shift",
    "bn_variance_shift_expected",
)
CURVE_REQUIRED = ("run_id", "epoch", "val_accuracy")
CURVE_NUMBERS = ("loss", "accuracy", "val_loss", "val_accuracy")
MAX_BYTES = 200 * 1024 * 1024  # ~20 times the table of a 50,000-trial sweep
MAX_SHOWN = 20  # errors listed; the rest are counted


class TrialTableError(ValueError):
    """A table that cannot be analysed; `errors` holds one located line per problem."""

    def __init__(self, errors: Sequence[str], source: str) -> None:
        self.errors = list(errors)
        self.source = source
        super().__init__(f"{source}: " + "; ".join(self.errors))


@dataclass(frozen=True)
class _Records:
    header: list[str]
    rows: list[tuple[int, list[str]]]  # (line the record starts on, its fields)


def read_trials_csv(
    path: str | Path,
    placements: Sequence[str],
    optimizers: Sequence[str] | None = None,
    with_curves: bool = False,
) -> pd.DataFrame:
    """The trial table in `path`, typed as `sweep.results.trial_table` returns it, or TrialTableError.

    `placements` and `optimizers` (labels) are what the table may hold, normally the spec's. Columns
    beyond REQUIRED are optional (`run_id` too, unless curves are to be matched to the trials);
    absent ones the analysis reads are added empty, run_id as "line-N".
    """
    source = str(path)
    records = _read(path, source)
    checks: dict[str, Callable[[str], object]] = {
        "status": _choice(STATUSES, upper=True),
        "placement": _choice(placements),
        "dropout": _number(0, 1, high_open=True, empty=False),
        "optimizer": _choice(optimizers) if optimizers is not None else _nonempty,
        "seed": _integer,
        **{c: _number(0, 1) for c in FRACTIONS},
        **{c: _number() for c in NUMBERS},
        "run_id": _nonempty,
    }
    table, errors = _typed(records, (*REQUIRED, "run_id") if with_curves else REQUIRED, checks)
    if not errors:
        errors += _duplicates(records, "run_id")
        if not (table["status"] == "FINISHED").any():
            counts = table["status"].value_counts()
            have = ", ".join(f"{n} {s}" for s, n in counts.items())
            errors.append(f"no FINISHED trial ({have}): there is nothing to analyse")
    _raise(errors, source)
    lines = [line for line, _ in records.rows]
    if "run_id" not in table:
        table.insert(0, "run_id", [f"line-{line}" for line in lines])
    for column in ("best_val_accuracy", "final_val_loss"):
        if column not in table:
            table[column] = math.nan
    if "phase" not in table:
        table["phase"] = ""
    return table


def read_curves_csv(path: str | Path, run_ids: Iterable[str]) -> pd.DataFrame:
    """Learning curves, long format (run_id, epoch, val_accuracy, ...), of the trials in `run_ids`."""
    source = str(path)
    records = _read(path, source)
    checks: dict[str, Callable[[str], object]] = {
        "run_id": _choice(sorted(set(run_ids)), what="a run_id of the trial table"),
        "epoch": _integer,
        **{c: _number() for c in CURVE_NUMBERS},
    }
    table, errors = _typed(records, CURVE_REQUIRED, checks)
    _raise(errors, source)
    return table


def _read(path: str | Path, source: str) -> _Records:
    """The file's header and records, or TrialTableError for what is not a CSV text table."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_BYTES:
            _fail([f"larger than {MAX_BYTES // 2**20} MiB: not a trial table"], source)
        data = path.read_bytes()
    except FileNotFoundError:
        _fail(["file not found"], source)
    except IsADirectoryError:
        _fail(["is a directory, not a CSV file"], source)
    except OSError as err:
        _fail([f"cannot be read: {err.strerror or err}"], source)
    if not data.strip():
        _fail([f"empty file: expected a CSV header row with at least {', '.join(REQUIRED)}"], source)
    if b"\0" in data:
        _fail([f"byte {data.index(0)}: binary data (a NUL byte), not a CSV text file"], source)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        _fail([f"byte {err.start}: not UTF-8 text, so not a CSV file this can read"], source)
    reader = csv.reader(text.splitlines(keepends=True), strict=True)
    records: list[tuple[int, list[str]]] = []
    try:
        start = 1
        for fields in reader:
            if any(f.strip() for f in fields):  # blank lines are no trials
                records.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as err:
        _fail([f"line {reader.line_num}: not CSV ({err})"], source)
    header = [h.strip() for h in records[0][1]]
    return _Records(header, records[1:])


def _typed(
    records: _Records, required: Sequence[str], checks: dict[str, Callable[[str], object]]
) -> tuple[pd.DataFrame, list[str]]:
    """The records as a DataFrame of checked values, and every problem found on the way."""
    header = records.header
    twice = sorted({h for h in header if header.count(h) > 1})
    errors = [f"line 1: the column {h!r} appears twice" for h in twice]
    missing = [c for c in required if c not in header]
    if missing:
        shown = ", ".join(repr(h) for h in header[:12]) + (", ..." if len(header) > 12 else "")
        errors.append(
            f"line 1: missing column(s) {', '.join(missing)} (the header has {shown}; "
            f"a trial table needs at least {', '.join(required)})"
        )
    if not records.rows and not missing:
        errors.append("no trials: the header is the only row")
    if errors:
        return pd.DataFrame(), errors
    columns: dict[str, list[object]] = {h: [] for h in header}
    for line, fields in records.rows:
        if len(fields) != len(header):
            errors.append(f"line {line}: {len(fields)} fields, but the header has {len(header)}")
            continue
        for name, raw in zip(header, fields, strict=True):
            check = checks.get(name, str)
            try:
                columns[name].append(check(raw.strip()))
            except ValueError as err:
                errors.append(f"line {line}, column {name}: {err} (got {raw[:60]!r})")
    return (pd.DataFrame() if errors else pd.DataFrame(columns)), errors


def _duplicates(records: _Records, column: str) -> list[str]:
    if column not in records.header:
        return []
    at = records.header.index(column)
    first: dict[str, int] = {}
    out = []
    for line, fields in records.rows:
        value = fields[at].strip()
        if value in first:
            out.append(f"line {line}, column {column}: {value!r} is already on line {first[value]}")
        first.setdefault(value, line)
    return out


def _raise(errors: list[str], source: str) -> None:
    if errors:
        _fail(errors, source)


def _fail(errors: list[str], source: str) -> NoReturn:
    more = len(errors) - MAX_SHOWN
    shown = errors[:MAX_SHOWN] + ([f"... and {more} more problem(s)"] if more > 0 else [])
    raise TrialTableError(shown, source)


def _choice(allowed: Sequence[str], upper: bool = False, what: str = "") -> Callable[[str], str]:
    """One of `allowed` (upper-cased first with `upper`); `what` names them when they are many."""
    listed = what or "one of " + ", ".join(allowed)

    def check(raw: str) -> str:
        value = raw.upper() if upper else raw
        if value not in allowed:
            raise ValueError(f"must be {listed}")
        return value

    return check


def _nonempty(raw: str) -> str:
    if not raw:
        raise ValueError("must not be empty")
    return raw


def _integer(raw: str) -> int:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a whole number >= 0") from None
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise ValueError("must be a whole number >= 0")
    return int(value)


def _number(
    low: float = -math.inf, high: float = math.inf, high_open: bool = False, empty: bool = True
) -> Callable[[str], float]:
    """A float in [low, high] (or [low, high)); empty, nan or inf stand for a missing value."""
    below = "<" if high_open else "<="
    bounds = "a number" if math.isinf(low) else f"a number >= {low:g} and {below} {high:g}"

    def check(raw: str) -> float:
        if not raw and empty:
            return math.nan
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"must be {bounds}{', or empty' if empty else ''}") from None
        if not math.isfinite(value):
            if empty:
                return math.nan
            raise ValueError(f"must be {bounds}")
        if value < low or value > high or (high_open and value == high):
            hint = " (a fraction, not a percentage)" if high == 1 and 1 < value <= 100 else ""
            raise ValueError(f"must be {bounds}{hint}")
        return value

    return check
