"""The dataset section's rules for the sources that read data: each field with its source, located."""

from __future__ import annotations

import pytest

from sweep.spec import SpecError, parse_spec


def errors_of(dataset: dict, **parts: object) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec({"name": "t", "dataset": dataset, **parts})
    return caught.value.errors


@pytest.mark.parametrize(
    ("dataset", "error"),
    [
        (
            {"source": "csv", "path": "a.csv", "target": "y", "loader": "f.py:load"},
            "dataset.loader: only used with source python (source is csv)",
        ),
        (
            {"source": "keras", "name": "mnist", "args": {"n": 1}},
            "dataset.args: only used with source python (source is keras)",
        ),
        (
            {"source": "npz", "path": "a.npz", "name": "mnist"},
            "dataset.name: only used with source keras (source is npz)",
        ),
        (
            {"source": "keras", "name": "mnist", "image_size": [8, 8]},
            "dataset.image_size: only used with source image_folder (source is keras)",
        ),
        (
            {"source": "python", "loader": "f.py:load", "color_mode": "rgb"},
            "dataset.color_mode: only used with source image_folder (source is python)",
        ),
        (
            {"source": "keras", "name": "mnist", "path": "x"},
            "dataset.path: only used with source csv, npz or image_folder (source is keras)",
        ),
        (
            {"source": "synthetic", "max_rows": 100},
            "dataset.max_rows: not used with source synthetic (n_samples sets its rows)",
        ),
        (
            {"source": "python"},
            "dataset.loader: required when source is python "
            "('file.py:function', 'package.module:function' or a plugin name)",
        ),
        (
            {"source": "keras"},
            "dataset.name: required when source is keras (mnist, fashion_mnist, cifar10 or cifar100)",
        ),
        (
            {"source": "image_folder", "path": "imgs"},
            "dataset.image_size: required when source is image_folder ([height, width])",
        ),
        (
            {"source": "image_folder", "image_size": [8, 8]},
            "dataset.path: required when source is image_folder (the folder of class folders)",
        ),
        (
            {"source": "image_folder", "path": "imgs", "image_size": [400, 400]},
            "dataset.image_size: 400x400 rgb images are 480,000 values a row (at most 100,000)",
        ),
        (
            {"source": "image_folder", "path": "imgs", "image_size": [0, 8]},
            "dataset.image_size: height and width must be at least 1 (got [0, 8])",
        ),
        (
            {"source": "python", "loader": "code/data.txt:load"},
            "dataset.loader: 'code/data.txt:load': a file REF names a .py file (got 'code/data.txt')",
        ),
        ({"source": "keras", "name": "mnist", "max_rows": 5}, "dataset.max_rows: must be >= 10 (got 5)"),
    ],
)
def test_a_field_with_the_wrong_source_or_missing_is_named_with_its_rule(dataset: dict, error: str) -> None:
    assert error in errors_of(dataset)


def test_loader_args_must_be_plain_bounded_data() -> None:
    (err,) = errors_of({"source": "python", "loader": "f.py:load", "args": {"blob": "x" * 70_000}})
    assert err.startswith("dataset.args: 70,0") and "(at most 65,536)" in err


def test_every_reading_source_is_valid_with_its_fields_and_images_fit_a_cnn() -> None:
    for dataset in (
        {"source": "python", "loader": "pkg.mod:load", "args": {"n": 3, "names": ["a"]}, "max_rows": 50},
        {"source": "keras", "name": "cifar10", "max_rows": 1000},
        {"source": "image_folder", "path": "/imgs", "image_size": [32, 32], "color_mode": "grayscale"},
    ):
        spec = parse_spec({"name": "t", "dataset": dataset, "model": {"kind": "cnn"}})
        assert spec.dataset.reads_data
        # what spec.yaml holds reads back as the same spec
        assert parse_spec(spec.model_dump(mode="json", exclude={"trial_count"})) == spec


def test_max_rows_bounds_the_rows_known_before_loading() -> None:
    errs = errors_of({"source": "iris", "max_rows": 10}, training={"batch_size": 16})
    assert errs == [
        "training.batch_size: 16 is more than the 8 training rows of dataset iris "
        "(10 rows, validation_split 0.2); use at most 8"
    ]
