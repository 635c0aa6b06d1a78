"""Small data written in the layouts the data sources read: image folders and Keras' cache.

Pixel values carry the class (and for CIFAR the channel), so a test can see rows land with their
labels and channels in the right place.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np


def write_image_folder(
    root: Path, classes: dict[str, int], size: tuple[int, int] = (8, 8), mode: str = "L", ext: str = "png"
) -> Path:
    """`root`/CLASS/i.EXT images, `classes[CLASS]` of each; every pixel of class k is 40 * k."""
    from PIL import Image

    for k, (name, count) in enumerate(sorted(classes.items())):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.new(mode, size, (40 * k,) * len(Image.new(mode, (1, 1)).getbands())).save(
                folder / f"{i:03d}.{ext}"
            )
    return root


def _images(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(
        (labels * 20 % 256).astype(np.uint8).reshape(-1, *[1] * len(shape)), (len(labels), *shape)
    )


def write_mnist(datasets: Path, train: np.ndarray, test: np.ndarray) -> Path:
    datasets.mkdir(parents=True, exist_ok=True)
    np.savez(
        datasets / "mnist.npz",
        x_train=_images(train, (28, 28)),
        y_train=train.astype(np.uint8),
        x_test=_images(test, (28, 28)),
        y_test=test.astype(np.uint8),
    )
    return datasets / "mnist.npz"


def write_fashion_mnist(datasets: Path, train: np.ndarray, test: np.ndarray) -> Path:
    folder = datasets / "fashion-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, labels in (("train", train), ("t10k", test)):
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 2051, len(labels), 28, 28) + _images(labels, (28, 28)).tobytes())
    return folder


def _cifar_batch(file: Path, labels: np.ndarray, label_key: bytes) -> None:
    # channel c of every pixel is 20 * label + c (mod 256), stored channels first as CIFAR stores them
    data = ((labels.reshape(-1, 1, 1) * 20 + np.arange(3).reshape(1, 3, 1)) % 256).astype(np.uint8)
    data = np.broadcast_to(data, (len(labels), 3, 1024)).reshape(len(labels), 3072).copy()
    with file.open("wb") as f:
        pickle.dump({b"data": data, label_key: labels.tolist(), b"batch_label": b"fixture"}, f, protocol=4)


def write_cifar(datasets: Path, name: str, train: np.ndarray, test: np.ndarray, keras3: bool = False) -> Path:
    """CIFAR-10's five training batches and test batch (or CIFAR-100's train and test) in a folder
    as `tar -xzf` leaves it, or (`keras3`) where Keras 3's load_data extracts it."""
    top = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    folder = datasets / (f"{top}-target" if keras3 else "") / top
    folder.mkdir(parents=True, exist_ok=True)
    if name == "cifar10":
        for i, part in enumerate(np.array_split(train, 5), start=1):
            _cifar_batch(folder / f"data_batch_{i}", part, b"labels")
        _cifar_batch(folder / "test_batch", test, b"labels")
    else:
        _cifar_batch(folder / "train", train, b"fine_labels")
        _cifar_batch(folder / "test", test, b"fine_labels")
    return folder


def labels(classes: int, per_class: int, seed: int = 0) -> np.ndarray:
    """`per_class` rows of each of `classes` classes, shuffled."""
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(classes), per_class))
