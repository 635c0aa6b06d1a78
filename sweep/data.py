"""Data sets: built-in, generated, or read by a source (sweep.sources); split and standardised
once per sweep."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sweep.sources.checks import DataError
from sweep.sources.files import existing, read_csv, read_npz
from sweep.sources.image_folder import read_image_folder
from sweep.sources.keras_cache import read_keras
from sweep.sources.loader import read_loader
from sweep.sources.rows import stratified_split, subset
from sweep.spec import MAX_CLASSES, DatasetSpec, SweepSpec, row_problems, split_sizes

__all__ = ["DataError", "Dataset", "load_dataset", "load_sweep_data", "trial_data"]

_IMAGE_SHAPES = {"digits": (8, 8, 1)}
# The field a label problem (one class, too many) is reported at.
_LABELS_FIELD = {
    "csv": "dataset.target",
    "python": "dataset.loader",
    "keras": "dataset.name",
    "image_folder": "dataset.path",
}


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
    if spec.source == "python":
        assert spec.loader is not None
        return read_loader(spec.loader, spec.args or {})
    if spec.source == "keras":
        assert spec.name is not None
        return read_keras(spec.name)
    assert spec.path is not None
    path = existing(Path(spec.path), folder=spec.source == "image_folder")
    if spec.source == "image_folder":
        assert spec.image_size is not None
        return read_image_folder(path, spec.image_size, spec.color_mode or "rgb", spec.max_rows, spec.seed)
    if spec.source == "csv":
        return read_csv(path, spec.target or "")
    return read_npz(path)


def _describe(spec: DatasetSpec) -> str:
    if spec.path:
        return str(spec.path)
    if spec.source == "python":
        return f"the data of {spec.loader}"
    return f"dataset {spec.name if spec.source == 'keras' else spec.source}"


def _split(y: np.ndarray, spec: DatasetSpec, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, test) row indices: the test rows first, then validation from the rest."""
    _, val_size, test_size = split_sizes(len(y), spec.validation_split, spec.test_split)
    rest, test = stratified_split(y, test_size, seed) if test_size else (np.arange(len(y)), None)
    train, val = stratified_split(y[rest], val_size, seed)
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


def load_dataset(spec: DatasetSpec, image: bool | None = False) -> Dataset:
    """Load, split and standardise (statistics from the training split only).

    With `image` True, rows are shaped as images (H, W, C) for a cnn, and flat data is refused;
    None keeps the image shape where the data has one (a user's model); False flattens every row.
    """
    x, labels, image_shape = _raw(spec)
    if spec.max_rows is not None and len(labels) > spec.max_rows:
        keep = subset(labels, spec.max_rows, spec.seed)
        x, labels = x[keep], labels[keep]
    names, y = np.unique(labels, return_inverse=True)
    y = y.reshape(len(labels))
    n_classes = len(names)
    where = _describe(spec)
    field = _LABELS_FIELD.get(spec.source, "dataset")
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
    data = _standardised(x, y, n_classes, spec, spec.seed, image_shape if image is not False else None)
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
