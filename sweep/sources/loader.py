"""A user's data loader: the function `dataset.loader` names, called with `dataset.args`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sweep.refs import DATASETS_GROUP, RefError, load_ref
from sweep.sources.checks import DataError, checked_arrays

_SHOWN = 300  # characters of a loader's own error message


def read_loader(ref: str, args: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, tuple[int, ...] | None]:
    """The loader's `(x, y)`, checked as an npz file's arrays are; every failure a DataError."""
    try:
        function = load_ref(ref, DATASETS_GROUP, "dataset.loader")
    except RefError as err:
        raise DataError(str(err)) from None
    try:
        returned = function(**args)
    except BaseException as err:  # a user's function may raise anything, SystemExit included
        if isinstance(err, KeyboardInterrupt):
            raise
        text = str(err)
        text = text if len(text) <= _SHOWN else text[:_SHOWN] + "..."
        hint = ""
        if isinstance(err, TypeError):
            given = ", ".join(args) or "none"
            hint = f" (it is called with dataset.args as keyword arguments: {given})"
        raise DataError(f"dataset.loader: {ref} raised {type(err).__name__}: {text}{hint}") from None
    if not isinstance(returned, tuple | list) or len(returned) != 2:
        what = f"a {type(returned).__name__}"
        if isinstance(returned, tuple | list):
            what += f" of {len(returned)}"
        raise DataError(f"dataset.loader: {ref} must return a pair (x, y) of numpy arrays (got {what})")
    for name, array in zip("xy", returned, strict=True):
        if not isinstance(array, np.ndarray):
            raise DataError(
                f"dataset.loader: {ref} returned {name} as a {type(array).__name__}, not a numpy array"
            )
    return checked_arrays(returned[0], returned[1], f"dataset.loader: (x, y) from {ref}")
