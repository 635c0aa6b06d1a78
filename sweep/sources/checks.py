"""`DataError` and the rules every loaded `(x, y)` obeys, whichever source gave it."""

from __future__ import annotations

import numpy as np

from sweep.spec import MAX_FEATURES, MAX_LOADED_VALUES


class DataError(ValueError):
    """A data set that cannot be loaded or does not fit the model."""


def listed(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def check_finite(x: np.ndarray, where: str, columns: list[str] | None = None) -> None:
    """Refuse missing (NaN) and infinite values, and values float32 cannot hold, by column.

    `where` opens the message ("dataset.path: data.npz"); `columns` names a CSV's columns.
    """
    bad = ~np.isfinite(x.reshape(len(x), -1))
    if not bad.any():
        return
    rows, cols = np.nonzero(bad)
    names = columns or [f"feature {c}" for c in range(bad.shape[1])]
    at = listed([names[c] for c in np.unique(cols)])
    first = f"data row {rows[0] + 1}" if columns else f"x[{rows[0]}]"
    raise DataError(
        f"{where} has {int(bad.sum())} missing, infinite or too large values "
        f"(beyond float32) in {at} (first at {first})"
    )


def checked_arrays(
    x: np.ndarray, y: np.ndarray, where: str
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...] | None]:
    """Features as float32 rows (n, d), labels (n,) and the image shape (H, W, C) if x has one.

    x of rank 3 (n, H, W) or 4 (n, H, W, C) is images. `where` opens every message
    ("dataset.path: data.npz", "dataset.loader: (x, y) from data.py:load").
    """
    if x.ndim == 0 or y.ndim == 0:
        raise DataError(f"{where}: x and y must be arrays of rows (got shapes {x.shape}, {y.shape})")
    if len(x) != len(y):
        raise DataError(f"{where}: x has {len(x)} rows but y has {len(y)}")
    if y.ndim > 1 and y.size != len(y):
        raise DataError(f"{where}: y must hold one label a row (got shape {y.shape}); not one-hot")
    if x.dtype.kind not in "biuf":  # bool, int, unsigned, float: not complex, text or dates
        raise DataError(f"{where}: array x must hold real numbers (got dtype {x.dtype})")
    if y.dtype.kind not in "biufUS":
        raise DataError(f"{where}: array y must hold numbers or text labels (got dtype {y.dtype})")
    if len(x) == 0:
        raise DataError(f"{where} has no rows")
    features = int(np.prod(x.shape[1:]))
    if features > MAX_FEATURES:
        raise DataError(f"{where}: rows of {features:,} values (at most {MAX_FEATURES:,})")
    if features * len(x) > MAX_LOADED_VALUES:
        raise DataError(
            f"{where}: {len(x):,} rows of {features:,} values are {features * len(x):,} values "
            f"(at most {MAX_LOADED_VALUES:,} are loaded; return fewer rows)"
        )
    with np.errstate(over="ignore"):
        flat = x.reshape(len(x), -1).astype(np.float32)
    check_finite(flat, where)
    y = y.reshape(len(y))
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        row = int(np.flatnonzero(~np.isfinite(y))[0])
        raise DataError(f"{where}: y has missing or infinite labels (first at y[{row}])")
    image = tuple(x.shape[1:]) if x.ndim in (3, 4) else None
    if image is not None and len(image) == 2:
        image = (*image, 1)
    return flat, y, image
