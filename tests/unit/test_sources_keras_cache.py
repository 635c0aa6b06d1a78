"""sweep.sources.keras_cache: Keras' four image sets from fixtures in its cache's layout, no network."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import labels, write_cifar, write_fashion_mnist, write_mnist

from sweep.data import DataError, load_dataset
from sweep.sources.keras_cache import keras_datasets_dir, read_keras
from sweep.spec import DatasetSpec, SpecError, parse_spec


@pytest.fixture
def datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    return tmp_path / "keras-home" / "datasets"


WRITERS = {
    "mnist": lambda d, tr, te: write_mnist(d, tr, te),
    "fashion_mnist": lambda d, tr, te: write_fashion_mnist(d, tr, te),
    "cifar10": lambda d, tr, te: write_cifar(d, "cifar10", tr, te),
    "cifar100": lambda d, tr, te: write_cifar(d, "cifar100", tr, te),
}
SHAPES = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3), "cifar100": (32, 32, 3)}


@pytest.mark.parametrize("name", list(WRITERS))
def test_each_set_is_read_from_the_cache_with_training_then_test_rows_pooled(
    datasets: Path, name: str
) -> None:
    classes = 100 if name == "cifar100" else 10
    train, test = labels(classes, 3), labels(classes, 1, seed=1)
    WRITERS[name](datasets, train, test)
    x, y, shape = read_keras(name)
    assert shape == SHAPES[name]
    np.testing.assert_array_equal(y, np.concatenate([train, test]))
    images = x.reshape(len(y), *shape)
    # every pixel carries its row's label (and, for CIFAR, its channel): rows and channels in place
    expected = (y.astype(np.int64) * 20).reshape(-1, 1, 1, 1) + (
        np.arange(3).reshape(1, 1, 1, 3) if shape[2] == 3 else 0
    )
    np.testing.assert_array_equal(images, np.broadcast_to(expected % 256, images.shape))
    data = load_dataset(DatasetSpec(source="keras", name=name, validation_split=0.5), image=True)
    assert data.n_classes == classes
    assert data.input_shape == shape
    assert len(data.x_train) + len(data.x_val) == 4 * classes


def test_cifar_is_also_found_where_keras_3_extracts_it(datasets: Path) -> None:
    write_cifar(datasets, "cifar10", labels(10, 2), labels(10, 1), keras3=True)
    assert len(read_keras("cifar10")[1]) == 30


def test_max_rows_and_a_test_split_apply_to_the_pooled_rows(datasets: Path) -> None:
    write_mnist(datasets, labels(10, 20), labels(10, 5))
    spec = DatasetSpec(source="keras", name="mnist", max_rows=100, test_split=0.2)
    data = load_dataset(spec, image=True)
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (60, 20, 20)
    assert data.y_test.sum(axis=0).tolist() == [2] * 10  # stratified


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("mnist", "file {d}/mnist.npz"),
        ("fashion_mnist", "file {d}/fashion-mnist/train-labels-idx1-ubyte.gz"),
        ("cifar10", "folder {d}/cifar-10-batches-py"),
        ("cifar100", "folder {d}/cifar-100-python"),
    ],
)
def test_an_empty_cache_names_the_file_and_where_to_place_it(datasets: Path, name: str, missing: str) -> None:
    with pytest.raises(DataError) as caught:
        read_keras(name)
    message = str(caught.value)
    assert message.startswith(
        f"dataset.name: {name} is not in Keras' cache: no {missing.format(d=datasets)}."
    )
    assert "sweep never downloads" in message and "https://" in message
    assert not datasets.exists() or not any(datasets.iterdir())  # nothing fetched, nothing written


def test_the_cache_is_keras_home_else_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert keras_datasets_dir() == tmp_path / "kh" / "datasets"
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert keras_datasets_dir() == tmp_path / ".keras" / "datasets"


def test_a_cifar_batch_that_would_run_code_is_refused(datasets: Path) -> None:
    folder = write_cifar(datasets, "cifar10", labels(10, 1), labels(10, 1))

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}, protocol=4))
    with pytest.raises(
        DataError,
        match=r"^dataset\.name: cifar10: cannot read .*test_batch \(UnpicklingError: refused to load posix",
    ):
        read_keras("cifar10")


def test_a_damaged_cache_file_is_a_located_error(datasets: Path) -> None:
    datasets.mkdir(parents=True)
    (datasets / "mnist.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"^dataset\.name: mnist: cannot read .*mnist\.npz"):
        read_keras("mnist")


def test_the_spec_needs_a_known_name_and_knows_its_classes() -> None:
    assert DatasetSpec(source="keras", name="cifar100").known_classes == 100
    with pytest.raises(SpecError, match=r"dataset\.name: required when source is keras"):
        parse_spec({"name": "x", "dataset": {"source": "keras"}})
    with pytest.raises(
        SpecError,
        match=r"dataset\.name: must be one of 'mnist', 'fashion_mnist', 'cifar10' or 'cifar100' \(got 'imag",
    ):
        parse_spec({"name": "x", "dataset": {"source": "keras", "name": "imagenet"}})
    with pytest.raises(
        SpecError, match=r"training\.loss: binary_crossentropy needs 2 classes \(dataset keras has 10\)"
    ):
        parse_spec(
            {
                "name": "x",
                "dataset": {"source": "keras", "name": "mnist"},
                "training": {"loss": "binary_crossentropy"},
            }
        )
