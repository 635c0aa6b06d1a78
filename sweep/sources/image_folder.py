"""A folder of images, one sub-folder per class: `keras.utils.image_dataset_from_directory`'s layout.

Indexed as Keras indexes it (class folders sorted by name, hidden ones skipped; each class
folder's images found recursively, sorted; .bmp, .gif, .jpeg, .jpg, .png in any case), decoded
with Pillow (no TensorFlow import), converted to the colour mode and resized bilinearly to
`image_size` where it differs, as `keras.utils.load_img` does. A GIF gives its first frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sweep.sources.checks import DataError, listed
from sweep.sources.rows import subset
from sweep.spec import IMAGE_CHANNELS

IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_PILLOW_MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}


def index_folder(path: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """Every image file under `path`'s class folders, its class index, and the class names."""
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(
            f"dataset.path: {path} has no class folders (source image_folder wants one sub-folder "
            "of images per class)"
        )
    files: list[Path] = []
    labels: list[int] = []
    empty = []
    for index, name in enumerate(classes):
        before = len(files)
        for root, _, names in sorted(os.walk(path / name), key=lambda walked: walked[0]):
            files += [Path(root) / n for n in sorted(names) if n.lower().endswith(IMAGE_FORMATS)]
        labels += [index] * (len(files) - before)
        if len(files) == before:
            empty.append(name)
    if empty:
        raise DataError(
            f"dataset.path: class folder{'s' if len(empty) > 1 else ''} {listed(empty)} of {path} "
            f"hold{'' if len(empty) > 1 else 's'} no images ({', '.join(IMAGE_FORMATS)})"
        )
    return files, np.asarray(labels, dtype=np.int64), classes


def read_image_folder(
    path: Path, image_size: tuple[int, int], color_mode: str, max_rows: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """Rows (n, H*W*C) as float32 pixel values 0-255, class indices, and the image shape (H, W, C).

    With `max_rows`, the rows are chosen (stratified, by `seed`) before any image is decoded.
    """
    files, labels, _ = index_folder(path)
    keep = subset(labels, max_rows, seed)
    height, width = image_size
    shape = (height, width, IMAGE_CHANNELS[color_mode])
    pixels = np.empty((len(keep), *shape), dtype=np.uint8)
    for row, index in enumerate(keep):
        pixels[row] = _decoded(files[index], shape, _PILLOW_MODES[color_mode])
    return pixels.reshape(len(keep), -1).astype(np.float32), labels[keep], shape


def _decoded(file: Path, shape: tuple[int, int, int], mode: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(file) as image:
            converted = image.convert(mode)
            if converted.size != (shape[1], shape[0]):
                converted = converted.resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
            return np.asarray(converted, dtype=np.uint8).reshape(shape)
    except Exception as err:  # Pillow raises its own kinds for a damaged or foreign file
        raise DataError(
            f"dataset.path: cannot read {file} as an image ({type(err).__name__}: {err})"
        ) from None
