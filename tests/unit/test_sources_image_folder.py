"""sweep.sources.image_folder: Keras' directory layout read into rows, labels and an image shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_fixtures import write_image_folder

from sweep.data import DataError, load_dataset
from sweep.reproducibility import data_fingerprint
from sweep.sources.image_folder import index_folder, read_image_folder
from sweep.spec import DatasetSpec


def _spec(path: Path, **fields: object) -> DatasetSpec:
    return DatasetSpec(source="image_folder", path=str(path), **{"image_size": (8, 8), **fields})


def test_classes_are_the_sorted_sub_folders_and_images_are_found_as_keras_finds_them(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "imgs", {"dog": 3, "ant": 2, "cat": 4})
    (root / "cat" / "more").mkdir()
    write_image_folder(root / "cat" / "more", {"deep": 1})  # nested: still class cat
    (root / "ant" / "notes.txt").write_text("not an image")
    (root / "ant" / "UPPER.PNG").write_bytes((root / "ant" / "000.png").read_bytes())
    (root / ".cache").mkdir()
    write_image_folder(root / ".cache", {"hidden": 2})
    (root / "loose.png").write_bytes((root / "ant" / "000.png").read_bytes())  # not in a class folder
    files, labels, classes = index_folder(root)
    assert classes == ["ant", "cat", "dog"]
    assert np.bincount(labels).tolist() == [3, 5, 3]
    assert [f.name for f in files[:3]] == ["000.png", "001.png", "UPPER.PNG"]


@pytest.mark.parametrize(
    ("mode", "color_mode", "channels"),
    [("L", "grayscale", 1), ("RGB", "rgb", 3), ("L", "rgb", 3), ("RGB", "rgba", 4)],
)
def test_images_are_converted_and_resized_to_the_spec(
    tmp_path: Path, mode: str, color_mode: str, channels: int
) -> None:
    root = write_image_folder(tmp_path, {"a": 2, "b": 3}, size=(12, 10), mode=mode)
    x, y, shape = read_image_folder(root, (8, 6), color_mode, None, 0)
    assert shape == (8, 6, channels)
    assert x.shape == (5, 8 * 6 * channels) and x.dtype == np.float32
    assert y.tolist() == [0, 0, 1, 1, 1]
    # class b's pixels are 40 (a's 0) in every colour channel; alpha is opaque
    colour = x.reshape(5, 8, 6, channels)[..., : min(channels, 3)]
    assert np.all(colour[:2] == 0) and np.all(colour[2:] == 40)


def test_a_folder_loads_as_images_split_and_standardised(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "imgs", {"a": 10, "b": 10, "c": 10}, ext="jpg")
    data = load_dataset(_spec(root, color_mode="grayscale", test_split=0.2), image=True)
    assert data.input_shape == (8, 8, 1)
    assert data.n_classes == 3
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (18, 6, 6)
    assert load_dataset(_spec(root), image=False).input_shape == (8 * 8 * 3,)


def test_max_rows_chooses_the_same_rows_before_decoding_as_after(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "imgs", {"a": 30, "b": 10})
    x_all, y_all, _ = read_image_folder(root, (8, 8), "grayscale", None, 3)
    x, y, _ = read_image_folder(root, (8, 8), "grayscale", 20, 3)
    assert np.bincount(y).tolist() == [15, 5]  # stratified
    from sweep.sources.rows import subset

    keep = subset(y_all, 20, 3)
    np.testing.assert_array_equal(x, x_all[keep])
    # Only the chosen rows are decoded: a damaged image outside them is never read.
    files, labels, _ = index_folder(root)
    skipped = next(f for i, f in enumerate(files) if i not in set(keep.tolist()))
    skipped.write_bytes(b"not a png")
    data = load_dataset(_spec(root, color_mode="grayscale", max_rows=20, seed=3))
    assert len(data.x_train) + len(data.x_val) == 20
    assert labels.tolist() == y_all.tolist()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: None, r"dataset\.path: folder not found"),
        (lambda root: root.mkdir(), r"has no class folders \(source image_folder wants one sub-folder"),
        (
            lambda root: (
                write_image_folder(root, {"a": 2}),
                (root / "b").mkdir(),
                (root / "b" / "x.txt").write_text(""),
            ),
            r"class folder b of .* holds no images \(\.bmp, \.gif",
        ),
        (
            lambda root: (
                write_image_folder(root, {"a": 2, "b": 2}),
                (root / "b" / "bad.png").write_bytes(b"nope"),
            ),
            r"dataset\.path: cannot read .*b/bad\.png as an image \(UnidentifiedImageError",
        ),
        (
            lambda root: (root.parent.mkdir(exist_ok=True), root.write_text("")),
            r"dataset\.path: is a file, not a folder",
        ),
        (lambda root: write_image_folder(root, {"a": 3}), r"dataset\.path: .* has one class \(0\)"),
    ],
)
def test_a_folder_that_cannot_be_read_is_a_located_error(tmp_path: Path, make, message: str) -> None:
    root = tmp_path / "imgs"
    make(root)
    with pytest.raises(DataError, match=message):
        load_dataset(_spec(root))


def test_the_fingerprint_follows_the_pixels(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "imgs", {"a": 5, "b": 5})
    first = data_fingerprint(load_dataset(_spec(root)))
    assert data_fingerprint(load_dataset(_spec(root))) == first
    write_image_folder(root, {"c": 5})
    assert data_fingerprint(load_dataset(_spec(root))) != first
