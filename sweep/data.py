"""Data sets: built-in, generated or from a file; split and standardised once per sweep."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sweep.spec import DatasetSpec

_IMAGE_SHAPES = {"digits": (8, 8, 1)}


class DataError(ValueError):
    """A data set that cannot be loaded or does not fit the model."""


@dataclass(frozen=True)
class Dataset:
    """Standardised train and validation arrays, with one-hot labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    n_classes: int
    name: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def _raw(spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray, tuple[int, ...] | None]:
    """Features (n, d), integer labels (n,) and the image shape if the data has one."""
    from sklearn import datasets

    if spec.source == "synthetic":
        n_classes = spec.n_classes or 2
        n_features = spec.n_features or 14
        informative = max(2, min(n_features, n_features // 2 + 1))
        while n_classes * 2 > 2**informative:  # make_classification needs room for clusters
            informative += 1
        if informative > n_features:
            raise DataError(f"dataset.n_features: {n_features} features cannot separate {n_classes} classes")
        x, y = datasets.make_classification(
            n_samples=spec.n_samples or 1000,
            n_features=n_features,
            n_informative=informative,
            n_redundant=min(2, n_features - informative),
            n_classes=n_classes,
            random_state=spec.seed,
        )
        return x.astype(np.float32), y, None
    if spec.source in ("digits", "breast_cancer", "wine", "iris"):
        bunch = getattr(datasets, f"load_{spec.source}")()
        return bunch.data.astype(np.float32), bunch.target, _IMAGE_SHAPES.get(spec.source)
    assert spec.path is not None
    path = Path(spec.path)
    if not path.is_file():
        raise DataError(f"dataset.path: file not found ({path})")
    if spec.source == "csv":
        return _read_csv(path, spec.target or "")
    return _read_npz(path)


def _read_csv(path: Path, target: str) -> tuple[np.ndarray, np.ndarray, None]:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except Exception as err:  # pandas raises many kinds for a malformed file
        raise DataError(f"dataset.path: cannot read {path} as CSV ({err})") from None
    if target not in frame.columns:
        raise DataError(
            f"dataset.target: no column {target!r} in {path.name} "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )
    features = frame.drop(columns=[target])
    non_numeric = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        raise DataError(f"dataset.path: non-numeric feature columns: {', '.join(non_numeric)}")
    if features.isna().any().any():
        raise DataError(f"dataset.path: {path.name} has missing values")
    _, y = np.unique(frame[target].to_numpy(), return_inverse=True)
    return features.to_numpy(np.float32), y, None


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, ...] | None]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive or "y" not in archive:
                raise DataError(f"dataset.path: {path.name} needs arrays named x and y")
            x, y = archive["x"], archive["y"]
    except (OSError, ValueError) as err:
        raise DataError(f"dataset.path: cannot read {path} as npz ({err})") from None
    if len(x) != len(y):
        raise DataError(f"dataset.path: x has {len(x)} rows but y has {len(y)}")
    image = tuple(x.shape[1:]) if x.ndim >= 3 else None
    if image is not None and len(image) == 2:
        image = (*image, 1)
    _, labels = np.unique(y, return_inverse=True)
    return x.reshape(len(x), -1).astype(np.float32), labels, image


def _stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    counts = np.bincount(y)
    stratify = y if counts.min() >= 2 and round(len(y) * fraction) >= len(counts) else None
    train, val = train_test_split(index, test_size=fraction, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(val)


def load_dataset(spec: DatasetSpec, image: bool = False) -> Dataset:
    """Load, split and standardise (statistics from the training split only).

    With `image`, rows are shaped as images (H, W, C) for a cnn.
    """
    x, y, image_shape = _raw(spec)
    n_classes = int(y.max()) + 1
    if n_classes < 2:
        raise DataError(f"dataset: needs at least 2 classes (found {n_classes})")
    train, val = _stratified_split(y, spec.validation_split, spec.seed)
    if len(train) < 2 or len(val) < 1:
        raise DataError(f"dataset.validation_split: leaves too few rows ({len(train)} train, {len(val)} val)")
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std[std == 0] = 1.0  # constant columns (blank pixels) stay at zero
    x = (x - mean) / std
    if image:
        if image_shape is None:
            raise DataError(f"model.kind: cnn needs image-shaped data; {spec.source} rows are flat vectors")
        x = x.reshape(len(x), *image_shape)
    onehot = np.eye(n_classes, dtype=np.float32)[y]
    return Dataset(
        x_train=np.ascontiguousarray(x[train], dtype=np.float32),
        y_train=onehot[train],
        x_val=np.ascontiguousarray(x[val], dtype=np.float32),
        y_val=onehot[val],
        n_classes=n_classes,
        name=spec.source,
    )
