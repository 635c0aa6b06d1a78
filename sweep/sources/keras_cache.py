"""MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 read from the files Keras caches; never a download.

The files are those `keras.datasets.<name>.load_data()` leaves in `$KERAS_HOME/datasets` (else
`~/.keras/datasets`), read here rather than through `load_data`, which would download again when
the file's hash differs. CIFAR's batches are pickles: read with an unpickler that rebuilds numpy
arrays and nothing else, as Keras' own does. Keras' training and test rows are pooled (training
first) and split by the spec like any other source; see docs/data.md.
"""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from sweep.sources.checks import DataError, checked_arrays

_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_FASHION = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz")  # fmt: skip
# name: (the folder Keras 3 extracts to, the archive's own top folder, its URL, batch files, label key)
_CIFAR = {
    "cifar10": (
        "cifar-10-batches-py-target",
        "cifar-10-batches-py",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"),
        b"labels",
    ),
    "cifar100": (
        "cifar-100-python-target",
        "cifar-100-python",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        ("train", "test"),
        b"fine_labels",
    ),
}
_NUMPY_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }
)


def keras_datasets_dir() -> Path:
    """Where Keras caches its data sets, found as Keras finds it (keras.src.backend.config)."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"]).expanduser() / "datasets"
    home = Path("~").expanduser()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras" / "datasets"


def read_keras(name: str) -> tuple[np.ndarray, np.ndarray, tuple[int, ...] | None]:
    """Rows (n, d) of every training then test image of data set `name`, labels, image shape."""
    folder = keras_datasets_dir()
    if name == "mnist":
        x, y, where = _mnist(folder / "mnist.npz")
    elif name == "fashion_mnist":
        x, y, where = _fashion_mnist(folder / "fashion-mnist")
    else:
        x, y, where = _cifar(folder, name)
    return checked_arrays(x, y, f"dataset.name: {name} ({where})")


def _missing(name: str, what: str, url: str, place: str) -> DataError:
    return DataError(
        f"dataset.name: {name} is not in Keras' cache: no {what}. sweep never downloads: fetch "
        f"{url} where there is a network and {place} (the cache is $KERAS_HOME/datasets, else "
        f"~/.keras/datasets; keras.datasets.{name}.load_data() fills it)"
    )


def _mnist(file: Path) -> tuple[np.ndarray, np.ndarray, Path]:
    if not file.is_file():
        raise _missing("mnist", f"file {file}", f"{_ORIGIN}mnist.npz", f"place it at {file}")
    try:
        with np.load(file, allow_pickle=False) as archive:
            x = np.concatenate([archive["x_train"], archive["x_test"]])
            y = np.concatenate([archive["y_train"], archive["y_test"]])
    except Exception as err:  # not an npz, a member missing or damaged, shapes that do not stack
        raise DataError(f"dataset.name: mnist: cannot read {file} ({type(err).__name__}: {err})") from None
    return x, y, file


def _fashion_mnist(folder: Path) -> tuple[np.ndarray, np.ndarray, Path]:
    parts = []
    for labels_name, images_name in (_FASHION[:2], _FASHION[2:]):
        labels = _idx(folder / labels_name, 8)
        images = _idx(folder / images_name, 16)
        if images.size != len(labels) * 28 * 28:
            raise DataError(
                f"dataset.name: fashion_mnist: {folder / images_name} holds {images.size:,} pixels, "
                f"not 28x28 for each of the {len(labels):,} labels of {labels_name}"
            )
        parts.append((images.reshape(len(labels), 28, 28), labels))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), folder


def _idx(file: Path, header: int) -> np.ndarray:
    """The bytes after the header of a gzipped IDX file (how Keras reads Fashion-MNIST)."""
    if not file.is_file():
        raise _missing("fashion_mnist", f"file {file}", _ORIGIN + file.name, f"place it at {file}")
    try:
        with gzip.open(file, "rb") as f:
            return np.frombuffer(f.read(), np.uint8, offset=header)
    except Exception as err:  # not gzip, or shorter than its header
        raise DataError(
            f"dataset.name: fashion_mnist: cannot read {file} ({type(err).__name__}: {err})"
        ) from None


def _cifar(datasets: Path, name: str) -> tuple[np.ndarray, np.ndarray, Path]:
    extracted, top, url, batches, label_key = _CIFAR[name]
    # Keras 3 extracts into `extracted`; Keras 2 and `tar -xzf` leave `top` in the folder itself.
    found = [f for f in (datasets / extracted / top, datasets / top) if f.is_dir()]
    if not found:
        place = f"extract it into {datasets} (tar -xzf {url.rsplit('/', 1)[1]} -C {datasets})"
        raise _missing(name, f"folder {datasets / top}", url, place)
    images, labels = [], []
    for batch in batches:
        data = _unpickled(found[0] / batch, name)
        try:
            pixels = np.asarray(data[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels.append(np.asarray(data[label_key]))
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(
                f"dataset.name: {name}: {found[0] / batch} is not a CIFAR batch ({type(err).__name__}: {err})"
            ) from None
        images.append(pixels.transpose(0, 2, 3, 1))  # channels last, as Keras gives them
    return np.concatenate(images), np.concatenate(labels), found[0]


class _NumpyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and refuses every other global: a pickle can otherwise run code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")


def _unpickled(file: Path, name: str) -> Any:
    if not file.is_file():
        raise DataError(f"dataset.name: {name}: no file {file} (the extracted archive is incomplete)")
    try:
        with file.open("rb") as f:
            data = _NumpyUnpickler(f, encoding="bytes").load()
    except Exception as err:  # UnpicklingError, EOFError, a refused global, ...
        raise DataError(f"dataset.name: {name}: cannot read {file} ({type(err).__name__}: {err})") from None
    if not isinstance(data, dict):
        raise DataError(f"dataset.name: {name}: {file} is not a CIFAR batch (a {type(data).__name__})")
    return data
