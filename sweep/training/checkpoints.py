"""A trial's training state in a folder: what a retry or a resumed sweep continues from.

The state is every variable of the model (weights, BatchNormalization's moving statistics, the
dropout layers' seed generators: the random state of dropout), every variable of the optimizer
(its slots and step count, which drives learning-rate decay), the epochs done, and the metrics
each epoch reported. The shuffle order of epoch k is fixed by the trial's seed and k alone
(`sweep.training.fit.training_batches`), so restoring these and continuing at epoch k + 1 trains
exactly what an uninterrupted trial trains (tests/unit/test_training_checkpoints.py).

Arrays go in one `.npz` (no pickle), the rest in a JSON file written last: a folder without it,
or whose arrays do not fit the model, is refused with a `CheckpointError` naming the reason. Tune
copies the folder to the sweep's storage file by file, in no set order, so the record also keeps
the arrays' size: a copy a killed process cut short has the record but not the whole archive.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

STATE_FILE = "state.npz"
META_FILE = "checkpoint.json"
FORMAT = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be restored (missing, corrupt, of another trial or model)."""


@dataclass(frozen=True)
class Restored:
    """Where a restored trial stands: epochs done and the metrics each of them reported."""

    epoch: int
    history: list[dict[str, Any]] = field(default_factory=list)


def save_state(
    model: Any, directory: str | Path, *, epoch: int, trial: str, history: list[dict[str, Any]]
) -> None:
    """Write the model's and optimizer's state after `epoch` epochs into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model_vars, optimizer_vars = _variables(model)
    arrays = [np.asarray(v.numpy()) for v in [*model_vars, *optimizer_vars]]
    with open(directory / STATE_FILE, "wb") as out:
        np.savez(out, *arrays)  # arr_0, arr_1, ...: the model's variables, then the optimizer's
    meta = {
        "format": FORMAT,
        "trial": trial,
        "epoch": epoch,
        "model_variables": len(model_vars),
        "optimizer_variables": len(optimizer_vars),
        "history": history,
        "state_bytes": (directory / STATE_FILE).stat().st_size,
    }
    tmp = directory / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, directory / META_FILE)  # last, and whole: its presence marks a complete state


def read_meta(directory: str | Path) -> dict[str, Any]:
    """The checkpoint's JSON record (epoch, trial, history); CheckpointError if unreadable."""
    path = Path(directory) / META_FILE
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"no {META_FILE} in {directory}: an incomplete checkpoint") from None
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path} is unreadable: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("epoch"), int):
        raise CheckpointError(f"{path} is not a format-{FORMAT} checkpoint record")
    return meta


def check_whole(directory: str | Path, meta: dict[str, Any]) -> None:
    """CheckpointError unless the arrays' file has the size its record wrote (records from before
    the size was kept are taken as whole; restoring then finds what is wrong)."""
    expected = meta.get("state_bytes")
    if not isinstance(expected, int):
        return
    path = Path(directory) / STATE_FILE
    try:
        size = path.stat().st_size
    except OSError:
        size = None
    if size != expected:
        found = "it is missing" if size is None else f"it has {size} bytes"
        raise CheckpointError(
            f"{STATE_FILE} is unreadable: {found}, its record says {expected} "
            "(a copy cut short, or overwritten)"
        )


def is_whole(directory: str | Path) -> bool:
    """Whether the folder holds a whole checkpoint: a readable record and the arrays it names."""
    try:
        check_whole(directory, read_meta(directory))
    except CheckpointError:
        return False
    return True


def restore_state(model: Any, directory: str | Path, *, trial: str) -> Restored:
    """Load a checkpoint of `trial` into a freshly built, compiled model of the same trial.

    Nothing is assigned unless every array fits: a refused checkpoint leaves the model as built.
    """
    meta = read_meta(directory)
    if meta.get("trial") != trial:
        raise CheckpointError(f"the checkpoint is of trial {meta.get('trial')!r}, not {trial!r}")
    model_vars, optimizer_vars = _variables(model)
    if (meta.get("model_variables"), meta.get("optimizer_variables")) != (
        len(model_vars),
        len(optimizer_vars),
    ):
        raise CheckpointError("the checkpoint's variables are not this model's")
    check_whole(directory, meta)
    try:
        with np.load(Path(directory) / STATE_FILE, allow_pickle=False) as npz:
            values = [npz[f"arr_{i}"] for i in range(len(model_vars) + len(optimizer_vars))]
    except Exception as err:  # a truncated or garbled file: zipfile, OSError, ValueError, KeyError
        raise CheckpointError(f"{STATE_FILE} is unreadable: {type(err).__name__}: {err}") from None
    variables = [*model_vars, *optimizer_vars]
    for variable, value in zip(variables, values, strict=True):
        if tuple(variable.shape) != value.shape:
            raise CheckpointError(
                f"{variable.path}: shape {value.shape} in the checkpoint, {tuple(variable.shape)} here"
            )
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)
    history = meta.get("history")
    return Restored(meta["epoch"], history if isinstance(history, list) else [])


def _variables(model: Any) -> tuple[list[Any], list[Any]]:
    # `model.variables` includes the non-trainable ones (BN statistics) and the seed generators'.
    return list(model.variables), list(model.optimizer.variables)
