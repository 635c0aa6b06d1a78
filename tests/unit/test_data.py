from pathlib import Path

import numpy as np
import pytest

from sweep.data import DataError, load_dataset
from sweep.spec import DatasetSpec


def test_synthetic_data_has_the_asked_shape_and_split() -> None:
    data = load_dataset(DatasetSpec(n_samples=1000, n_features=14, n_classes=2, validation_split=0.2))
    assert data.x_train.shape == (800, 14)
    assert data.x_val.shape == (200, 14)
    assert data.y_train.shape == (800, 2)
    assert data.n_classes == 2


def test_standardisation_uses_training_statistics_only() -> None:
    data = load_dataset(DatasetSpec(n_samples=500, n_features=6))
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(data.x_train.std(axis=0), 1, atol=1e-4)
    assert not np.allclose(data.x_val.mean(axis=0), 0, atol=1e-5)


def test_the_seed_fixes_data_and_split() -> None:
    a = load_dataset(DatasetSpec(seed=3))
    b = load_dataset(DatasetSpec(seed=3))
    c = load_dataset(DatasetSpec(seed=4))
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert not np.array_equal(a.x_val, c.x_val)


def test_split_is_stratified() -> None:
    data = load_dataset(DatasetSpec(source="iris"))
    assert sorted(data.y_val.sum(axis=0).tolist()) == [10, 10, 10]


@pytest.mark.parametrize(
    ("source", "classes", "features"),
    [("digits", 10, 64), ("breast_cancer", 2, 30), ("wine", 3, 13), ("iris", 3, 4)],
)
def test_builtin_sets_load_offline(source: str, classes: int, features: int) -> None:
    data = load_dataset(DatasetSpec(source=source))
    assert data.n_classes == classes
    assert data.input_shape == (features,)


def test_digits_as_images_for_cnn() -> None:
    data = load_dataset(DatasetSpec(source="digits"), image=True)
    assert data.input_shape == (8, 8, 1)


def test_flat_data_refused_as_images() -> None:
    with pytest.raises(DataError, match="cnn needs image-shaped data"):
        load_dataset(DatasetSpec(source="wine"), image=True)


def test_csv_with_a_named_target(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    rng = np.random.default_rng(0)
    rows = ["a,b,label"] + [
        f"{x:.3f},{y:.3f},{'yes' if x > y else 'no'}" for x, y in rng.normal(size=(60, 2))
    ]
    path.write_text("\n".join(rows))
    data = load_dataset(DatasetSpec(source="csv", path=str(path), target="label"))
    assert data.n_classes == 2
    assert data.input_shape == (2,)


def test_csv_missing_target_column_lists_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(DataError, match=r"^dataset.target: no column 'y' in /.*/d.csv \(columns: a, b\)$"):
        load_dataset(DatasetSpec(source="csv", path=str(path), target="y"))


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        load_dataset(DatasetSpec(source="npz", path=str(tmp_path / "none.npz")))


def test_npz_images_keep_their_shape(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.normal(size=(50, 6, 6)), y=rng.integers(0, 3, size=50))
    data = load_dataset(DatasetSpec(source="npz", path=str(path)), image=True)
    assert data.input_shape == (6, 6, 1)
