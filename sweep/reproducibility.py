"""A trial's reproducibility record: library versions, data fingerprint, spec and trial hashes.

Every hash is SHA-256 in hex, over canonical JSON (sorted keys, no spaces) or over array bytes,
so it is the same in any process, on any machine. The record travels as MLflow tags (`TAGS`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from sweep.code_bundle import REF_FIELDS, ref_identity
from sweep.data import DataError, Dataset
from sweep.spec import SweepSpec
from sweep.trial import trial_rate, trial_seed

PREFIX = "repro."
DATA_FINGERPRINT = "repro.data_fingerprint"  # the arrays trials train and validate on
SPEC_HASH = "repro.spec_hash"  # the whole spec as the sweep ran it
TRIAL_HASH = "repro.trial_hash"  # what decides one trial's training: spec core, data, configuration, seed
# Each library's distribution names, the first installed wins (a worker image may carry the slim ones).
_DISTRIBUTIONS = {
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "keras": ("keras",),
    "ray": ("ray",),
    "mlflow": ("mlflow", "mlflow-skinny"),
    "numpy": ("numpy",),
}
VERSION_TAGS = {name: f"{PREFIX}{name}" for name in ("python", *_DISTRIBUTIONS)}
TAGS = (*VERSION_TAGS.values(), DATA_FINGERPRINT, SPEC_HASH, TRIAL_HASH)


class DataChanged(DataError):
    """The data loaded now is not the data a sweep's runs recorded."""


def library_versions() -> dict[str, str]:
    """Python's version and the training stack's, read from package metadata (nothing imported)."""
    found = {"python": platform.python_version()}
    for name, distributions in _DISTRIBUTIONS.items():
        found[name] = "absent"
        for distribution in distributions:
            try:
                found[name] = version(distribution)
                break
            except PackageNotFoundError:
                continue
    return found


_LATER_DATASET_FIELDS = ("args", "name", "image_size", "color_mode", "max_rows")


def _sha256(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def data_fingerprint(data: Dataset) -> str:
    """SHA-256 of the loaded data set: each array's name, dtype, shape and bytes.

    The arrays after the split and standardisation (every array field of Dataset, in order), so a
    changed file, split or preprocessing all show.
    """
    digest = hashlib.sha256()
    for field in dataclasses.fields(data):
        array = getattr(data, field.name)
        if not isinstance(array, np.ndarray):
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{field.name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())  # a copy, but once per sweep
    return digest.hexdigest()


def _as_saved(spec: SweepSpec) -> SweepSpec:
    """The spec as its saved spec.yaml reads back, which is what `sweep reproduce` hashes.

    Validating the dump again gives every value its field's type: a default such as
    `cpus_per_trial=1` is an int until then, and 1.0 once read back from YAML.
    """
    return SweepSpec.model_validate(spec.model_dump(mode="json", exclude={"trial_count"}))


def spec_hash(spec: SweepSpec) -> str:
    """SHA-256 of the whole spec, canonically ordered."""
    return _sha256(_as_saved(spec).model_dump(mode="json", exclude={"trial_count"}))


def trial_identity(spec: SweepSpec, config: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    """What decides one trial's training, and nothing else.

    The spec's dataset, model and training sections, with the data's fingerprint in place of its
    file's path; the CPUs and GPUs of a trial (TensorFlow's thread count changes a CNN's results in
    the last bits); the trial's placement, dropout, optimizer settings (not its label) and seed.
    `training.mixed_precision` only when on, so older runs' hashes still match.
    Not the name, tracking, search, strategy or retry settings.
    """
    spec = _as_saved(spec)
    core = spec.model_dump(
        mode="json",
        include={"dataset": True, "model": True, "training": True},
        exclude={"dataset": {"path", "loader"}},  # where the data came from; the fingerprint is what
    )
    if not spec.training.mixed_precision:  # trials recorded before the setting existed keep their hash
        del core["training"]["mixed_precision"]
    # Unset, the dataset fields added with the data sources are left out, so a trial recorded
    # before they existed keeps its identity (and `sweep reproduce` its old sweeps).
    for field in _LATER_DATASET_FIELDS:
        if core["dataset"].get(field) is None:
            core["dataset"].pop(field, None)
    for section, name in REF_FIELDS:  # the user's code by file name, not by where its copy lies
        if name in core.get(section, {}):
            core[section][name] = ref_identity(core[section][name])
    optimizer = spec.search.optimizers[config["optimizer"]]
    return {
        **core,
        "data_fingerprint": fingerprint,
        "cpus_per_trial": spec.resources.cpus_per_trial,
        "gpus_per_trial": spec.resources.gpus_per_trial,
        "placement": str(config["placement"]),
        "dropout": float(config["dropout"]),
        "optimizer": {"name": optimizer.name, **optimizer.settings_at(trial_rate(config, spec))},
        "seed": trial_seed(config),
    }


def trial_hash(spec: SweepSpec, config: dict[str, Any], fingerprint: str) -> str:
    """SHA-256 of `trial_identity`: equal hashes, equal training."""
    return _sha256(trial_identity(spec, config, fingerprint))


def sweep_record(spec: SweepSpec, fingerprint: str | None) -> dict[str, str]:
    """The tags every run of a sweep carries: versions, spec hash and (when known) data fingerprint."""
    record = {VERSION_TAGS[name]: value for name, value in library_versions().items()}
    record[SPEC_HASH] = spec_hash(spec)
    if fingerprint:
        record[DATA_FINGERPRINT] = fingerprint
    return record


def check_same_data(recorded: str | None, current: str, where: str) -> None:
    """Raise DataChanged when a recorded fingerprint differs from the data loaded now.

    A record without a fingerprint (runs from before it was recorded) is not checked.
    """
    if recorded and recorded != current:
        raise DataChanged(
            f"dataset: the data changed since {where} recorded it: data fingerprint now "
            f"{current[:16]}, recorded {recorded[:16]} ({DATA_FINGERPRINT}); "
            "restore that data, or run a new sweep"
        )
