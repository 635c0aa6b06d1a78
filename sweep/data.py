"""Data sets: built-in, generated or from a file; split and standardised once per sweep."""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sweep.spec import MAX_CLASSES, MAX_FEATURES, DatasetSpec, SweepSpec, row_problems, split_sizes

_IMAGE_SHAPES = {"digits": (8, 8, 1)}


class DataError(ValueError):
    """A data set that cannot be loaded or does not fit the model."""


@dataclass(frozen=True)
class Dataset:
    """Standardised train, validation and (with `dataset.test_split`) test arrays, one-hot labels.

    With `dataset.split_per_seed`, `rows` and `labels` keep every row as loaded (flat, before the
    split and standardisation; labels as class indices) for `trial_data` to split by a trial's seed.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    n_classes: int
    name: str
    # None, not empty, when absent: the data fingerprint hashes every array field.
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    rows: np.ndarray | None = None
    labels: np.ndarray | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def _raw(spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray, tuple[int, ...] | None]:
    """Features (n, d), labels (n,) and the image shape if the data has one."""
    from sklearn import datasets

    if spec.source == "synthetic":
        n_features = spec.n_features or 14
        informative = spec.informative_features  # the spec refused what cannot be generated
        x, y = datasets.make_classification(
            n_samples=spec.n_samples or 1000,
            n_features=n_features,
            n_informative=informative,
            n_redundant=min(2, n_features - informative),
            n_classes=spec.n_classes or 2,
            random_state=spec.seed,
        )
        return x.astype(np.float32), y, None
    if spec.source in ("digits", "breast_cancer", "wine", "iris"):
        bunch = getattr(datasets, f"load_{spec.source}")()
        return bunch.data.astype(np.float32), bunch.target, _IMAGE_SHAPES.get(spec.source)
    assert spec.path is not None
    path = Path(spec.path)
    try:
        found = path.is_file()
    except OSError as err:  # a name too long for the file system, say
        raise DataError(f"dataset.path: cannot read {path} ({err.strerror})") from None
    if not found:
        what = "is a directory, not a file" if path.is_dir() else "file not found"
        raise DataError(f"dataset.path: {what} ({path})")
    if spec.source == "csv":
        return _read_csv(path, spec.target or "")
    return _read_npz(path)


def _listed(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _read_csv(path: Path, target: str) -> tuple[np.ndarray, np.ndarray, None]:
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
        raise DataError(f"dataset.target: no column {target!r} in {path} (columns: {_listed(columns)})")
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
            f"dataset.path: {path} has non-numeric feature columns: {_listed(non_numeric)}{example}"
        )
    with np.errstate(over="ignore"):  # too large for float32: inf, refused just below
        x = features.to_numpy(np.float32)
    _check_finite(x, path, [str(c) for c in features.columns])
    return x, labels.to_numpy(), None


def _check_finite(x: np.ndarray, path: Path, columns: list[str] | None = None) -> None:
    """Refuse missing (NaN) and infinite values, and values float32 cannot hold, by column."""
    bad = ~np.isfinite(x.reshape(len(x), -1))
    if not bad.any():
        return
    rows, cols = np.nonzero(bad)
    names = columns or [f"feature {c}" for c in range(bad.shape[1])]
    where = _listed([names[c] for c in np.unique(cols)])
    first = f"data row {rows[0] + 1}" if columns else f"x[{rows[0]}]"
    raise DataError(
        f"dataset.path: {path} has {int(bad.sum())} missing, infinite or too large values "
        f"(beyond float32) in {where} (first at {first})"
    )


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, ...] | None]:
    x, y = _npz_arrays(path)
    if x.ndim == 0 or y.ndim == 0:
        raise DataError(
            f"dataset.path: {path}: x and y must be arrays of rows (got shapes {x.shape}, {y.shape})"
        )
    if len(x) != len(y):
        raise DataError(f"dataset.path: {path}: x has {len(x)} rows but y has {len(y)}")
    if y.ndim > 1 and y.size != len(y):
        raise DataError(
            f"dataset.path: {path}: y must hold one label a row (got shape {y.shape}); not one-hot"
        )
    if x.dtype.kind not in "biuf":  # bool, int, unsigned, float: not complex, text or dates
        raise DataError(f"dataset.path: {path}: array x must hold real numbers (got dtype {x.dtype})")
    if y.dtype.kind not in "biufUS":
        raise DataError(
            f"dataset.path: {path}: array y must hold numbers or text labels (got dtype {y.dtype})"
        )
    if len(x) == 0:
        raise DataError(f"dataset.path: {path} has no rows")
    features = int(np.prod(x.shape[1:]))
    if features > MAX_FEATURES:
        raise DataError(f"dataset.path: {path}: rows of {features:,} values (at most {MAX_FEATURES:,})")
    with np.errstate(over="ignore"):
        flat = x.reshape(len(x), -1).astype(np.float32)
    _check_finite(flat, path)
    y = y.reshape(len(y))
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        row = int(np.flatnonzero(~np.isfinite(y))[0])
        raise DataError(f"dataset.path: {path}: y has missing or infinite labels (first at y[{row}])")
    image = tuple(x.shape[1:]) if x.ndim in (3, 4) else None
    if image is not None and len(image) == 2:
        image = (*image, 1)
    return flat, y, image


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
                f"(it has: {_listed(archive.files) or 'nothing'})"
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


def _describe(spec: DatasetSpec) -> str:
    return str(spec.path) if spec.path else f"dataset {spec.source}"


def _stratified_split(y: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, part): sorted indices into `y`, `size` rows in the part."""
    from sklearn.model_selection import train_test_split

    counts = np.unique(y, return_counts=True)[1]
    # scikit-learn stratifies only with two rows a class and a class a row on each side
    stratify = y if counts.min() >= 2 and min(len(y) - size, size) >= len(counts) else None
    rest, part = train_test_split(np.arange(len(y)), test_size=size, random_state=seed, stratify=stratify)
    return np.sort(rest), np.sort(part)


def _split(y: np.ndarray, spec: DatasetSpec, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, test) row indices: the test rows first, then validation from the rest."""
    _, val_size, test_size = split_sizes(len(y), spec.validation_split, spec.test_split)
    rest, test = _stratified_split(y, test_size, seed) if test_size else (np.arange(len(y)), None)
    train, val = _stratified_split(y[rest], val_size, seed)
    return rest[train], rest[val], test if test is not None else np.arange(0)


def _standardised(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    spec: DatasetSpec,
    seed: int,
    image_shape: tuple[int, ...] | None,
) -> Dataset:
    """Split by `seed` and standardise with the training rows' statistics; rows shaped `image_shape`."""
    train, val, test = _split(y, spec, seed)
    # float64 statistics: squares of large float32 values overflow
    mean = x[train].mean(axis=0, dtype=np.float64)
    std = x[train].std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0  # constant columns (blank pixels) stay at zero
    x = ((x - mean) / std).astype(np.float32)
    if image_shape is not None:
        x = x.reshape(len(x), *image_shape)
    onehot = np.eye(n_classes, dtype=np.float32)[y]

    def rows(index: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x[index], dtype=np.float32)

    return Dataset(
        x_train=rows(train),
        y_train=onehot[train],
        x_val=rows(val),
        y_val=onehot[val],
        n_classes=n_classes,
        name=spec.source,
        x_test=rows(test) if len(test) else None,
        y_test=onehot[test] if len(test) else None,
    )


def load_dataset(spec: DatasetSpec, image: bool = False) -> Dataset:
    """Load, split and standardise (statistics from the training split only).

    With `image`, rows are shaped as images (H, W, C) for a cnn.
    """
    x, labels, image_shape = _raw(spec)
    names, y = np.unique(labels, return_inverse=True)
    y = y.reshape(len(labels))
    n_classes = len(names)
    where = _describe(spec)
    field = "dataset.target" if spec.source == "csv" else "dataset"
    if n_classes < 2:
        raise DataError(f"{field}: {where} has one class ({names[:1].tolist()[0]!r}); at least 2 are needed")
    if n_classes > MAX_CLASSES:
        raise DataError(
            f"{field}: {where} has {n_classes:,} distinct labels (at most {MAX_CLASSES:,} classes; "
            "is the label column continuous?)"
        )
    smallest = int(np.bincount(y).min())
    problems = row_problems(len(y), spec, 1, where, n_classes, smallest)
    if problems:
        raise DataError(problems[0])
    if image and image_shape is None:
        raise DataError(f"model.kind: cnn needs image-shaped data; {spec.source} rows are flat vectors")
    data = _standardised(x, y, n_classes, spec, spec.seed, image_shape if image else None)
    if spec.split_per_seed:
        data = dataclasses.replace(data, rows=x, labels=y)
    return data


def trial_data(data: Dataset, spec: DatasetSpec, seed: int) -> Dataset:
    """The data of the trial with `seed`: `data`, or with split_per_seed its rows split by that seed.

    Every placement with the same seed gets the same split, so paired comparisons stay paired.
    """
    if not spec.split_per_seed or data.rows is None or data.labels is None:
        return data
    split_seed = int(np.random.SeedSequence([spec.seed, seed]).generate_state(1)[0])
    image_shape = data.input_shape if len(data.input_shape) > 1 else None
    return _standardised(data.rows, data.labels, data.n_classes, spec, split_seed, image_shape)


def load_sweep_data(spec: SweepSpec) -> Dataset:
    """The data a sweep trains on, checked against its model, loss and batch size."""
    data = load_dataset(spec.dataset, image=spec.model.image_rows)
    where = _describe(spec.dataset)
    if spec.training.loss == "binary_crossentropy" and data.n_classes != 2:
        raise DataError(f"training.loss: binary_crossentropy needs 2 classes ({where} has {data.n_classes})")
    rows = len(data.x_train) + len(data.x_val) + (0 if data.x_test is None else len(data.x_test))
    problems = row_problems(rows, spec.dataset, spec.training.batch_size, where)
    if problems:
        raise DataError(problems[0])
    return data
