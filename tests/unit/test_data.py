import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sweep.data import DataError, Dataset, load_dataset, load_sweep_data, trial_data
from sweep.reproducibility import data_fingerprint
from sweep.spec import MAX_FEATURES, DatasetSpec, SpecError, SweepSpec, parse_spec


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


# --- hazards: every bad file is a DataError naming the field, the file and the problem -------


def _csv(tmp_path: Path, text: str, name: str = "d.csv") -> DatasetSpec:
    path = tmp_path / name
    path.write_text(text)
    return DatasetSpec(source="csv", path=str(path), target="label")


def _npz(tmp_path: Path, name: str = "d.npz", **arrays: object) -> DatasetSpec:
    path = tmp_path / name
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return DatasetSpec(source="npz", path=str(path))


def _rows(n: int, classes: int = 2) -> str:
    return "a,b,label\n" + "".join(f"{i},{i % 7},{i % classes}\n" for i in range(n))


CSV_HAZARDS = {
    "empty file": ("", r"dataset.path: /.*/d.csv is empty"),
    "header only": ("a,b,label\n", r"dataset.path: /.*/d.csv has a header but no rows"),
    "non-numeric feature": (
        "a,b,label\n1,2,x\n3,four,y\n",
        r"dataset.path: /.*/d.csv has non-numeric feature columns: b \(data row 2: 'four'\)",
    ),
    "missing value": (
        "a,b,label\n1,2,x\n3,,y\n5,6,x\n",
        r"dataset.path: /.*/d.csv has 1 missing, infinite or too large values \(beyond float32\) "
        r"in b \(first at data row 2\)",
    ),
    "infinity": (
        "a,b,label\n1,inf,x\n3,4,y\n",
        r"dataset.path: /.*/d.csv has 1 missing, .* in b \(first at data row 1\)",
    ),
    "too large for float32": (
        "a,b,label\n1,2,x\n1e39,4,y\n",
        r"dataset.path: /.*/d.csv has 1 .* in a \(first at data row 2\)",
    ),
    "empty label": (
        "a,b,label\n1,2,x\n3,4,\n",
        r"dataset.target: column 'label' of /.*/d.csv has empty values \(first in data row 2\)",
    ),
    "one class": (
        _rows(30, classes=1),
        r"dataset.target: /.*/d.csv has one class \(0\); at least 2 are needed",
    ),
    "continuous label": (
        "a,label\n" + "".join(f"{i},{i / 7:.6f}\n" for i in range(1200)),
        r"dataset.target: /.*/d.csv has 1,200 distinct labels \(at most 1,000 classes; is the label column",
    ),
    "no features": (
        "label\nx\ny\n",
        r"dataset.path: /.*/d.csv has no feature columns besides the target 'label'",
    ),
    "too few rows to split": (
        _rows(2),
        r"dataset.validation_split: 0.2 of the 2 rows of /.*/d.csv leaves 1 for training \(at least 2",
    ),
    "not text": ("a,label\n\xff\xfe,1\n", r"dataset.path: cannot read /.*/d.csv as CSV"),
}


@pytest.mark.parametrize("hazard", sorted(CSV_HAZARDS))
def test_csv_hazards_are_data_errors_naming_field_file_and_problem(tmp_path: Path, hazard: str) -> None:
    text, message = CSV_HAZARDS[hazard]
    path = tmp_path / "d.csv"
    path.write_bytes(text.encode("latin-1") if hazard == "not text" else text.encode())
    with pytest.raises(DataError, match=f"^{message}"):
        load_dataset(DatasetSpec(source="csv", path=str(path), target="label"))


def test_a_directory_or_an_unreadable_name_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"dataset.path: is a directory, not a file"):
        load_dataset(DatasetSpec(source="csv", path=str(tmp_path), target="label"))
    with pytest.raises(DataError, match=r"dataset.path: cannot read .* \(File name too long\)"):
        load_dataset(DatasetSpec(source="csv", path=str(tmp_path / ("x" * 5000)), target="label"))


def _sweep(dataset: DatasetSpec, batch_size: int = 8, loss: str = "categorical_crossentropy") -> SweepSpec:
    return parse_spec(
        {
            "name": "t",
            "dataset": dataset.model_dump(exclude_none=True),
            "training": {"batch_size": batch_size, "loss": loss},
        }
    )


def test_fewer_training_rows_than_a_batch_are_refused_with_the_largest_batch_that_fits(
    tmp_path: Path,
) -> None:
    spec = _sweep(_csv(tmp_path, _rows(20)), batch_size=32)
    with pytest.raises(DataError) as err:
        load_sweep_data(spec)
    assert re.fullmatch(
        r"training.batch_size: 32 is more than the 16 training rows of /.*/d.csv "
        r"\(20 rows, validation_split 0.2\); use at most 16",
        str(err.value),
    )
    assert load_sweep_data(_sweep(_csv(tmp_path, _rows(20)), batch_size=16)).x_train.shape == (16, 2)


def test_binary_crossentropy_on_a_file_of_three_classes_is_refused(tmp_path: Path) -> None:
    spec = _sweep(_csv(tmp_path, _rows(60, classes=3)), loss="binary_crossentropy")
    with pytest.raises(
        DataError, match=r"^training.loss: binary_crossentropy needs 2 classes \(/.*/d.csv has 3\)"
    ):
        load_sweep_data(spec)


@pytest.mark.parametrize("features", [5_000])
def test_thousands_of_columns_load_in_bounded_time(tmp_path: Path, features: int) -> None:
    rng = np.random.default_rng(0)
    header = ",".join(f"c{i}" for i in range(features)) + ",label\n"
    rows = "".join(",".join(f"{v:.2f}" for v in rng.normal(size=features)) + f",{i % 2}\n" for i in range(60))
    spec = _csv(tmp_path, header + rows)
    started = time.monotonic()
    data = load_dataset(spec)
    assert data.input_shape == (features,)
    assert time.monotonic() - started < 30


def test_more_columns_than_the_limit_are_refused_from_the_header_alone(tmp_path: Path) -> None:
    columns = MAX_FEATURES + 1
    # one data row, and a malformed one: the header decides before pandas reads the rows
    spec = _csv(tmp_path, ",".join(f"c{i}" for i in range(columns)) + ",label\n1,2\n")
    started = time.monotonic()
    with pytest.raises(
        DataError, match=r"^dataset.path: /.*/d.csv has 100,001 feature columns \(at most 100,000\)"
    ):
        load_dataset(spec)
    assert time.monotonic() - started < 10


def test_npz_with_mismatched_lengths_names_both(tmp_path: Path) -> None:
    spec = _npz(tmp_path, x=np.zeros((10, 3)), y=np.zeros(9))
    with pytest.raises(DataError, match=r"^dataset.path: /.*/d.npz: x has 10 rows but y has 9$"):
        load_dataset(spec)


def test_npz_object_arrays_are_refused_without_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    # An object array whose unpickling would create a file: refusing must not run it.
    spec = _npz(tmp_path, x=np.array([_Touch(str(marker))] * 10, dtype=object), y=np.arange(10) % 2)
    with pytest.raises(DataError, match=r"^dataset.path: /.*/d.npz: array x holds Python objects.*refused"):
        load_dataset(spec)
    assert not marker.exists()


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


NPZ_HAZARDS = {
    "missing y": ({"x": np.zeros((10, 2)), "labels": np.zeros(10)}, r"has no array y \(it has: x, labels\)"),
    "scalar x": ({"x": np.float64(3), "y": np.zeros(1)}, r"x and y must be arrays of rows"),
    "one-hot y": (
        {"x": np.zeros((10, 2)), "y": np.eye(2)[np.arange(10) % 2]},
        r"y must hold one label a row",
    ),
    "complex x": ({"x": np.ones((10, 2)) * 1j, "y": np.arange(10) % 2}, r"array x must hold real numbers"),
    "text x": ({"x": np.array([["a"]] * 10), "y": np.arange(10) % 2}, r"array x must hold real numbers"),
    "nan in x": (
        {"x": np.where(np.eye(10, 3) > 0, np.nan, 1.0), "y": np.arange(10) % 2},
        r"has 3 missing, infinite or too large values \(beyond float32\) in feature 0, feature 1, feature 2 "
        r"\(first at x\[0\]\)",
    ),
    "nan in y": (
        {"x": np.zeros((4, 2)), "y": np.array([0, 1, np.nan, 1])},
        r"y has missing or infinite labels",
    ),
    "no rows": ({"x": np.zeros((0, 2)), "y": np.zeros(0)}, r"has no rows"),
}


@pytest.mark.parametrize("hazard", sorted(NPZ_HAZARDS))
def test_npz_hazards_are_data_errors_naming_the_file(tmp_path: Path, hazard: str) -> None:
    arrays, message = NPZ_HAZARDS[hazard]
    spec = _npz(tmp_path, **arrays)
    with pytest.raises(DataError, match=f"^dataset.path: /.*/d.npz:? {message}"):
        load_dataset(spec)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"is not an npz archive"),
        (b"x,y\n1,2\n", r"is not an npz archive"),
        (b"PK\x03\x04 broken zip", r"is not an npz archive"),
    ],
    ids=["empty", "text", "broken zip"],
)
def test_a_file_that_is_not_an_npz_archive_is_a_data_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "d.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"^dataset.path: /.*/d.npz {message}"):
        load_dataset(DatasetSpec(source="npz", path=str(path)))


def test_a_single_npy_array_is_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    with path.open("wb") as f:
        np.save(f, np.zeros((10, 2)))
    with pytest.raises(DataError, match=r"holds one array, not an npz archive of arrays x and y"):
        load_dataset(DatasetSpec(source="npz", path=str(path)))


def test_npz_text_labels_and_images_of_rank_five_load_flat(tmp_path: Path) -> None:
    labels = np.array(["cat", "dog"] * 10)
    data = load_dataset(
        _npz(tmp_path, x=np.ones((20, 2, 2, 2, 2)) * np.arange(20)[:, None, None, None, None], y=labels)
    )
    assert data.n_classes == 2 and data.input_shape == (16,)
    with pytest.raises(DataError, match="cnn needs image-shaped data"):
        load_dataset(_npz(tmp_path, "e.npz", x=np.ones((20, 2, 2, 2, 2)), y=labels), image=True)


def test_large_values_standardise_without_overflow(tmp_path: Path) -> None:
    spec = _csv(tmp_path, "a,label\n" + "".join(f"{(i + 1) * 1e37},{i % 2}\n" for i in range(30)))
    data = load_dataset(spec)
    assert np.isfinite(data.x_train).all()
    np.testing.assert_allclose(data.x_train.std(axis=0), 1, atol=1e-3)


# --- the CLI: `sweep validate` reads the data file; `sweep run` stops before any run exists ---

ROOT = Path(__file__).resolve().parents[2]


def _spec_with_data(tmp_path: Path, data: str, batch_size: int = 8) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: hazard\n"
        f"dataset: {{source: csv, path: {data}, target: label}}\n"
        "model: {hidden_units: [4]}\n"
        "search: {placement: [none], dropout: [0.0], seeds: 1}\n"
        f"training: {{epochs: 1, batch_size: {batch_size}}}\n"
    )
    return spec


@pytest.mark.parametrize("hazard", ["missing value", "non-numeric feature", "one class", "empty file"])
def test_validate_reports_a_data_hazard_with_spec_field_and_file(tmp_path: Path, hazard: str) -> None:
    from typer.testing import CliRunner

    from sweep.cli import app

    text, message = CSV_HAZARDS[hazard]
    (tmp_path / "d.csv").write_text(text)
    spec = _spec_with_data(tmp_path, "d.csv")
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert re.search(f"^error {re.escape(str(spec))}: {message}", result.output, re.MULTILINE), result.output


def test_validate_accepts_a_good_data_file_and_refuses_a_batch_larger_than_it(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sweep.cli import app

    (tmp_path / "d.csv").write_text(_rows(40))
    ok = CliRunner().invoke(app, ["validate", str(_spec_with_data(tmp_path, "d.csv"))])
    assert ok.exit_code == 0 and "valid: 1 trials" in ok.output
    big = CliRunner().invoke(app, ["validate", str(_spec_with_data(tmp_path, "d.csv", batch_size=64))])
    assert big.exit_code == 2
    assert "training.batch_size: 64 is more than the 32 training rows of" in big.output


@pytest.mark.slow  # a real `sweep run` process: imports Ray Tune and MLflow (about 15 s here)
def test_run_with_a_bad_data_file_exits_2_before_any_mlflow_run(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text(CSV_HAZARDS["infinity"][0])
    spec = _spec_with_data(tmp_path, "d.csv")
    store = tmp_path / "store" / "mlflow.db"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweep.cli",
            "run",
            str(spec),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--tracking-uri",
            f"sqlite:///{store}",
            "--cpus",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert re.search(r"error dataset.path: /.*/d.csv has 1 missing, infinite or too large values", run.stderr)
    # no store, so no run: neither the parent nor any trial was ever created, and Ray never started
    assert not store.parent.exists()
    assert "Ray" not in run.stdout + run.stderr


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
    plain = load_dataset(DatasetSpec(source="wine", seed=4, split_per_seed=False))
    assert plain.x_test is None and plain.y_test is None and plain.rows is None
    # None, not an empty array: the data fingerprint of a sweep without one stays what it was
    assert data_fingerprint(plain) == data_fingerprint(
        Dataset(plain.x_train, plain.y_train, plain.x_val, plain.y_val, plain.n_classes, plain.name)
    )
    held = load_dataset(DatasetSpec(source="wine", seed=4, test_split=0.2, split_per_seed=False))
    assert data_fingerprint(held) != data_fingerprint(plain)


def test_test_and_validation_splits_are_both_stratified() -> None:
    data = load_dataset(DatasetSpec(source="iris", validation_split=0.2, test_split=0.2))
    assert data.y_test is not None
    assert data.y_test.sum(axis=0).tolist() == [10, 10, 10]
    assert data.y_val.sum(axis=0).tolist() == [10, 10, 10]
    assert data.y_train.sum(axis=0).tolist() == [30, 30, 30]


def test_dataset_seed_fixes_the_test_split() -> None:
    fixed = {"source": "digits", "test_split": 0.2, "split_per_seed": False}
    a, b, c = (load_dataset(DatasetSpec(**fixed, seed=s)) for s in (1, 1, 2))
    assert a.x_test is not None and b.x_test is not None and c.x_test is not None
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_test, c.x_test)
    assert trial_data(a, DatasetSpec(**fixed, seed=1), 7) is a  # not per seed


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
