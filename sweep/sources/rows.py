"""Stratified, seeded choices of rows: the splits' held-out parts and `dataset.max_rows`."""

from __future__ import annotations

import numpy as np


def stratified_split(y: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, part): sorted indices into `y`, `size` rows in the part."""
    from sklearn.model_selection import train_test_split

    counts = np.unique(y, return_counts=True)[1]
    # scikit-learn stratifies only with two rows a class and a class a row on each side
    stratify = y if counts.min() >= 2 and min(len(y) - size, size) >= len(counts) else None
    rest, part = train_test_split(np.arange(len(y)), test_size=size, random_state=seed, stratify=stratify)
    return np.sort(rest), np.sort(part)


def subset(y: np.ndarray, max_rows: int | None, seed: int) -> np.ndarray:
    """Sorted indices of at most `max_rows` rows of labels `y`, in the classes' proportions.

    The same labels, limit and seed give the same rows, so a folder of images can be chosen from
    before any image is decoded and still match a subset of every row.
    """
    if max_rows is None or len(y) <= max_rows:
        return np.arange(len(y))
    return stratified_split(y, max_rows, seed)[1]
