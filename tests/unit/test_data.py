import re
from pathlib import Path

import numpy as np
import pytest

from sweep.data import DataError, Dataset, load_dataset, trial_data
from sweep.reproducibility import data_fingerprint
from sweep.spec import DatasetSpec, SpecError, parse_spec


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


# --- the held-out test split (issue 15, item 4) ------------------------------------------------


def _all_rows(data: Dataset) -> np.ndarray:
    assert data.x_test is not None
    return np.concatenate([data.x_train, data.x_val, data.x_test])


def test_a_test_split_is_carved_off_disjoint_from_training_and_validation() -> None:
    data = load_dataset(DatasetSpec(n_samples=500, n_features=6, validation_split=0.2, test_split=0.3))
    assert data.x_test is not None and data.y_test is not None
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (250, 100, 150)
    assert len(data.y_test) == 150
    rows = _all_rows(data)
    assert len(np.unique(rows, axis=0)) == 500  # every generated row in exactly one split
    # standardised with the training rows' statistics only
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0, atol=1e-5)
    assert not np.allclose(data.x_test.mean(axis=0), 0, atol=1e-3)


def test_without_a_test_split_there_are_no_test_arrays_and_the_split_is_unchanged() -> None:
    plain = load_dataset(DatasetSpec(source="wine", seed=4))
    assert plain.x_test is None and plain.y_test is None and plain.rows is None
    # None, not an empty array: the data fingerprint of a sweep without one stays what it was
    assert data_fingerprint(plain) == data_fingerprint(
        Dataset(plain.x_train, plain.y_train, plain.x_val, plain.y_val, plain.n_classes, plain.name)
    )
    held = load_dataset(DatasetSpec(source="wine", seed=4, test_split=0.2))
    assert data_fingerprint(held) != data_fingerprint(plain)


def test_test_and_validation_splits_are_both_stratified() -> None:
    data = load_dataset(DatasetSpec(source="iris", validation_split=0.2, test_split=0.2))
    assert data.y_test is not None
    assert data.y_test.sum(axis=0).tolist() == [10, 10, 10]
    assert data.y_val.sum(axis=0).tolist() == [10, 10, 10]
    assert data.y_train.sum(axis=0).tolist() == [30, 30, 30]


def test_dataset_seed_fixes_the_test_split() -> None:
    a, b, c = (load_dataset(DatasetSpec(source="digits", test_split=0.2, seed=s)) for s in (1, 1, 2))
    assert a.x_test is not None and b.x_test is not None and c.x_test is not None
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_test, c.x_test)
    assert trial_data(a, DatasetSpec(source="digits", test_split=0.2, seed=1), 7) is a  # not per seed


def test_split_per_seed_draws_other_rows_for_each_seed_reproducibly() -> None:
    spec = DatasetSpec(n_samples=400, n_features=5, test_split=0.25, split_per_seed=True, seed=3)
    data = load_dataset(spec)
    assert data.rows is not None and data.labels is not None
    first, again, other = trial_data(data, spec, 0), trial_data(data, spec, 0), trial_data(data, spec, 1)
    for one in (first, again, other):
        assert one.x_test is not None
        assert (len(one.x_train), len(one.x_val), len(one.x_test)) == (220, 80, 100)
        assert one.rows is None  # a trial needs only its own split
        np.testing.assert_allclose(one.x_train.mean(axis=0), 0, atol=1e-5)  # its own statistics
        assert len(np.unique(_all_rows(one), axis=0)) == 400
    for name in ("x_train", "x_val", "x_test", "y_val"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.y_val, other.y_val)
    assert first.x_test is not None and other.x_test is not None
    assert not np.array_equal(first.x_test, other.x_test)
    # the rows each trial splits are part of what the fingerprint covers
    fixed = load_dataset(spec.model_copy(update={"split_per_seed": False}))
    assert data_fingerprint(data) != data_fingerprint(fixed)


def test_split_per_seed_keeps_images_and_stratification() -> None:
    spec = DatasetSpec(source="digits", test_split=0.2, split_per_seed=True)
    one = trial_data(load_dataset(spec, image=True), spec, 5)
    assert one.input_shape == (8, 8, 1) and one.x_test is not None and one.y_test is not None
    assert one.x_test.shape == (360, 8, 8, 1)
    assert min(one.y_test.sum(axis=0)) >= 35  # digits' classes have 174-183 rows: ~36 each


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        (
            {"validation_split": 0.5, "test_split": 0.4},
            r"dataset.test_split: 0.4 with validation_split 0.5 holds out 0.9 of the rows; "
            r"the two must total less than 0.9",
        ),
        (
            {"source": "digits", "test_split": 0.002},
            r"dataset.test_split: 0.002 of the 1797 rows of dataset digits is 4 rows, fewer than its "
            r"10 classes",
        ),
        ({"test_split": -0.1}, r"^dataset.test_split: must be >= 0 \(got -0.1\)$"),
        ({"split_per_seed": "sometimes"}, r"dataset.split_per_seed: .*bool"),
    ],
)
def test_test_split_settings_that_cannot_work_are_refused_by_the_spec(dataset: dict, message: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec({"name": "held-out", "dataset": dataset})
    assert any(re.search(message, line) for line in err.value.errors), err.value.errors


def test_training_rows_left_by_both_splits_are_checked_against_the_batch() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(
            {
                "name": "held-out",
                "dataset": {"source": "iris", "validation_split": 0.4, "test_split": 0.4},
                "training": {"batch_size": 64},
            }
        )
    assert any(
        "training.batch_size: 64 is more than the 30 training rows of dataset iris "
        "(150 rows, validation_split 0.4, test_split 0.4); use at most 30" in line
        for line in err.value.errors
    ), err.value.errors


def test_a_class_too_small_for_three_splits_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    labels = ["a"] * 40 + ["b"] * 40 + ["c"] * 2
    path.write_text("x,label\n" + "\n".join(f"{i},{label}" for i, label in enumerate(labels)))
    spec = DatasetSpec(source="csv", path=str(path), target="label", test_split=0.2)
    with pytest.raises(DataError, match=r"^dataset.test_split: the smallest class of /.*/d.csv has 2 rows"):
        load_dataset(spec)
    assert load_dataset(spec.model_copy(update={"test_split": 0.0})).x_test is None  # as before
