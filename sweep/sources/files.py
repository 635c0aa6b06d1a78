"""Data files: CSV with a label column, npz with arrays x and y."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from sweep.sources.checks import DataError, check_finite, checked_arrays, listed
from sweep.spec import MAX_FEATURES


def existing(path: Path, folder: bool = False) -> Path:
    """`path` if it is a file (with `folder`, a directory), else a located DataError."""
    try:
        found = path.is_dir() if folder else path.is_file()
    except OSError as err:  # a name too long for the file system, say
        raise DataError(f"dataset.path: cannot read {path} ({err.strerror})") from None
    if found:
        return path
    if folder:
        what = "is a file, not a folder" if path.is_file() else "folder not found"
    else:
        what = "is a directory, not a file" if path.is_dir() else "file not found"
    raise DataError(f"dataset.path: {what} ({path})")


def read_csv(path: Path, target: str) -> tuple[np.ndarray, np.ndarray, None]:
    import pandas as pd

    if path.stat().st_size == 0:
        raise DataError(f"dataset.path: {path} is empty")
    try:
        # The header alone first (csv, not pandas, which is slow on wide headers): a file of a
        # million columns is refused before it is read.
        with path.open(newline="", encoding="utf-8") as f:
            columns = next(csv.reader(f), [])
        if target in columns and len(columns) - 1 > MAX_FEATURES:
            raise DataError(
                f"dataset.path: {path} has {len(columns) - 1:,} feature columns (at most {MAX_FEATURES:,})"
            )
        frame = pd.read_csv(path) if target in columns else None
    except DataError:
        raise
    except Exception as err:  # pandas raises many kinds for a malformed file
        raise DataError(f"dataset.path: cannot read {path} as CSV ({type(err).__name__}: {err})") from None
    if frame is None:
        raise DataError(f"dataset.target: no column {target!r} in {path} (columns: {listed(columns)})")
    if frame.empty:
        raise DataError(f"dataset.path: {path} has a header but no rows")
    labels = frame[target]
    if labels.isna().any():
        row = int(np.flatnonzero(labels.isna().to_numpy())[0]) + 1
        raise DataError(
            f"dataset.target: column {target!r} of {path} has empty values (first in data row {row})"
        )
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise DataError(f"dataset.path: {path} has no feature columns besides the target {target!r}")
    non_numeric = [str(c) for c, kind in features.dtypes.items() if not pd.api.types.is_numeric_dtype(kind)]
    if non_numeric:
        column = features[non_numeric[0]]
        bad = column[pd.to_numeric(column, errors="coerce").isna() & column.notna()]
        example = f" (data row {int(bad.index[0]) + 1}: {bad.iloc[0]!r})" if len(bad) else ""
        raise DataError(
            f"dataset.path: {path} has non-numeric feature columns: {listed(non_numeric)}{example}"
        )
    with np.errstate(over="ignore"):  # too large for float32: inf, refused just below
        x = features.to_numpy(np.float32)
    check_finite(x, f"dataset.path: {path}", [str(c) for c in features.columns])
    return x, labels.to_numpy(), None


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, ...] | None]:
    x, y = _npz_arrays(path)
    return checked_arrays(x, y, f"dataset.path: {path}")


def _npz_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Arrays x and y of the npz archive at `path`, never unpickled."""
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as err:  # OSError, ValueError, EOFError, zipfile.BadZipFile, ...
        raise DataError(f"dataset.path: {path} is not an npz archive ({err})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"dataset.path: {path} holds one array, not an npz archive of arrays x and y")
    with archive:
        missing = [k for k in ("x", "y") if k not in archive.files]
        if missing:
            raise DataError(
                f"dataset.path: {path} has no array {' or '.join(missing)} "
                f"(it has: {listed(archive.files) or 'nothing'})"
            )
        arrays = {}
        for key in ("x", "y"):
            try:
                arrays[key] = archive[key]
            except ValueError as err:
                if "allow_pickle" in str(err):
                    raise DataError(
                        f"dataset.path: {path}: array {key} holds Python objects, which load only by "
                        "unpickling (refused: a pickle can run code); save numeric arrays"
                    ) from None
                raise DataError(f"dataset.path: {path}: cannot read array {key} ({err})") from None
            except Exception as err:  # a damaged member: zipfile and zlib raise their own kinds
                raise DataError(f"dataset.path: {path}: cannot read array {key} ({err})") from None
    return arrays["x"], arrays["y"]
