"""The reproducibility record: hashes, versions, the record on runs, and what one seed fixes."""

from __future__ import annotations

import dataclasses
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from sweep.data import DataError, Dataset
from sweep.reproducibility import (
    DATA_FINGERPRINT,
    SPEC_HASH,
    TAGS,
    TRIAL_HASH,
    DataChanged,
    check_same_data,
    data_fingerprint,
    library_versions,
    spec_hash,
    trial_hash,
    trial_identity,
)
from sweep.space import grid_configs, random_configs
from sweep.spec import PLACEMENTS, SweepSpec, load_spec, parse_spec, parse_spec_text
from sweep.tracking import SweepTracker, local_tracking_uri
from sweep.trial import RunStatus

BASE: dict[str, Any] = {
    "name": "repro-test",
    "dataset": {"source": "synthetic", "n_samples": 120, "n_features": 6},
    "model": {"hidden_units": [8, 8], "activation": "relu"},
    "search": {
        "placement": list(PLACEMENTS),
        "dropout": [0.0, 0.5],
        "optimizer": [{"name": "adam", "learning_rate": 0.01}, {"name": "sgd", "learning_rate": 0.1}],
        "seeds": 2,
    },
    "training": {"epochs": 2, "batch_size": 16},
    "tracking": {"experiment": "repro-test"},
}
CONFIG = {"placement": "after_dropout", "dropout": 0.5, "optimizer": "adam", "seed": 1}
FINGERPRINT = "f" * 64
EXAMPLES = Path(__file__).parents[2] / "examples"


def spec_with(**changes: Any) -> SweepSpec:
    """BASE with `section__field=value` changes."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in BASE.items()}
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            data[section] = {**data.get(section, {}), field: value}
        else:
            data[section] = value
    return parse_spec(data)


def dataset(**changes: Any) -> Dataset:
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.normal(size=(20, 3)).astype(np.float32),
        "y_train": np.eye(2, dtype=np.float32)[rng.integers(0, 2, 20)],
        "x_val": rng.normal(size=(5, 3)).astype(np.float32),
        "y_val": np.eye(2, dtype=np.float32)[rng.integers(0, 2, 5)],
    }
    return Dataset(**{**arrays, "n_classes": 2, "name": "synthetic", **changes})


# --- hashes ----------------------------------------------------------------------------------


def test_data_fingerprint_is_stable_and_changes_with_values_dtype_or_shape() -> None:
    data = dataset()
    assert data_fingerprint(data) == data_fingerprint(data) == data_fingerprint(dataset())
    assert len(data_fingerprint(data)) == 64
    changed = data.x_train.copy()
    changed[3, 1] = np.nextafter(changed[3, 1], np.float32(np.inf))  # one value, one ulp
    assert data_fingerprint(dataset(x_train=changed)) != data_fingerprint(data)
    assert data_fingerprint(dataset(x_train=data.x_train.astype(np.float64))) != data_fingerprint(data)
    # The same bytes in another shape, or moved from validation to training, are other data.
    assert data_fingerprint(dataset(x_val=data.x_val.reshape(3, 5))) != data_fingerprint(data)
    swapped = dataset(x_train=data.x_val, x_val=data.x_train)
    assert data_fingerprint(swapped) != data_fingerprint(data)


def test_data_fingerprint_covers_every_array_field_of_the_dataset() -> None:
    data = dataset()
    for field in dataclasses.fields(Dataset):
        value = getattr(data, field.name)
        if isinstance(value, np.ndarray):
            flipped = value.copy()
            flipped.flat[0] += 1
            assert data_fingerprint(dataclasses.replace(data, **{field.name: flipped})) != data_fingerprint(
                data
            ), field.name


def test_spec_hash_is_stable_and_sees_every_section() -> None:
    assert spec_hash(spec_with()) == spec_hash(spec_with())
    assert len(spec_hash(spec_with())) == 64
    others = [
        spec_with(name="repro-other"),
        spec_with(tracking__experiment="other"),
        spec_with(resources__cpus_per_trial=2),
        spec_with(training__epochs=3),
        spec_with(search__seeds=3),
    ]
    assert len({spec_hash(s) for s in others} | {spec_hash(spec_with())}) == len(others) + 1


def test_trial_hash_is_stable_and_changes_with_data_spec_core_configuration_and_seed() -> None:
    spec = spec_with()
    base = trial_hash(spec, CONFIG, FINGERPRINT)
    assert trial_hash(spec_with(), dict(CONFIG), FINGERPRINT) == base
    changed = [
        trial_hash(spec, CONFIG, "e" * 64),
        trial_hash(spec_with(dataset__seed=1), CONFIG, FINGERPRINT),
        trial_hash(spec_with(model__hidden_units=[8, 4]), CONFIG, FINGERPRINT),
        trial_hash(spec_with(training__batch_size=32), CONFIG, FINGERPRINT),
        trial_hash(spec_with(resources__cpus_per_trial=2), CONFIG, FINGERPRINT),  # thread count
        trial_hash(spec, {**CONFIG, "placement": "before_activation"}, FINGERPRINT),
        trial_hash(spec, {**CONFIG, "dropout": 0.0}, FINGERPRINT),
        trial_hash(spec, {**CONFIG, "optimizer": "sgd"}, FINGERPRINT),
        trial_hash(spec, {**CONFIG, "seed": 0}, FINGERPRINT),
        trial_hash(
            spec_with(search__optimizer=[{"name": "adam", "learning_rate": 0.02}]), CONFIG, FINGERPRINT
        ),
    ]
    assert base not in changed
    assert len(set(changed)) == len(changed)


def test_trial_hash_ignores_what_does_not_change_training() -> None:
    base = trial_hash(spec_with(), CONFIG, FINGERPRINT)
    same = [
        spec_with(name="renamed"),
        spec_with(tracking__experiment="elsewhere", tracking__uri="http://127.0.0.1:5000"),
        spec_with(resources__max_failures=0, resources__max_concurrent_trials=2),
        spec_with(search__seeds=5, search__placement=["after_dropout"]),
        spec_with(strategy={"algorithm": "grid", "metric": "val_loss", "mode": "min"}),
    ]
    for spec in same:
        assert trial_hash(spec, CONFIG, FINGERPRINT) == base
    # A labelled optimizer is the same optimizer: the label only names it.
    labelled = spec_with(search__optimizer=[{"name": "adam", "learning_rate": 0.01, "label": "fast"}])
    assert trial_hash(labelled, {**CONFIG, "optimizer": "fast"}, FINGERPRINT) == base


def test_mixed_precision_changes_the_trial_hash_and_off_leaves_older_hashes_as_they_were() -> None:
    from sweep.reproducibility import trial_identity

    base = trial_hash(spec_with(), CONFIG, FINGERPRINT)
    assert trial_hash(spec_with(training__mixed_precision=False), CONFIG, FINGERPRINT) == base
    assert trial_hash(spec_with(training__mixed_precision=True), CONFIG, FINGERPRINT) != base
    # Off, the identity is what it was before the setting existed: runs recorded then still match.
    assert "mixed_precision" not in trial_identity(spec_with(), CONFIG, FINGERPRINT)["training"]


def test_a_data_file_moved_with_its_sweep_keeps_the_trial_hash(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2)), y=np.arange(4) % 2)
    here = spec_with(dataset={"source": "npz", "path": str(tmp_path / "d.npz")})
    there = spec_with(dataset={"source": "npz", "path": "data/d.npz"})
    assert trial_hash(here, CONFIG, FINGERPRINT) == trial_hash(there, CONFIG, FINGERPRINT)


def test_a_trial_recorded_before_the_data_sources_keeps_its_identity() -> None:
    # the dataset fields of that time, path left out: unset new fields add nothing to the hash
    old = {"source", "n_samples", "n_features", "n_classes", "target", "validation_split", "test_split"}
    assert set(trial_identity(spec_with(), CONFIG, FINGERPRINT)["dataset"]) == old | {
        "split_per_seed",
        "seed",
    }


def test_a_moved_loader_keeps_the_trial_hash_and_its_args_or_max_rows_change_it() -> None:
    def loaded(**dataset: Any) -> str:
        spec = spec_with(dataset={"source": "python", "args": {"n": 1}, "loader": "/a/d.py:load", **dataset})
        return trial_hash(spec, CONFIG, FINGERPRINT)

    assert loaded(loader="/b/d.py:load") == loaded()
    assert len({loaded(), loaded(args={"n": 2}), loaded(max_rows=100)}) == 3


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_the_spec_yaml_a_sweep_saves_gives_the_hashes_its_trials_recorded(example: Path) -> None:
    # `sweep reproduce` hashes the spec as its spec.yaml reads back: a default such as
    # cpus_per_trial=1 (an int, where YAML then reads 1.0) must not change the identity.
    ran = load_spec(example, ["dataset.test_split=0.2"])
    saved = parse_spec(parse_spec_text(ran.to_yaml()))
    # A drawn-rate example is random search: its configurations are its drawn blocks.
    for config in grid_configs(ran) if ran.strategy.algorithm == "grid" else random_configs(ran):
        assert trial_hash(saved, config, FINGERPRINT) == trial_hash(ran, config, FINGERPRINT)
    assert spec_hash(saved) == spec_hash(ran)


def test_library_versions_name_python_and_the_training_stack() -> None:
    found = library_versions()
    assert set(found) == {"python", "tensorflow", "keras", "ray", "mlflow", "numpy"}
    assert found["numpy"] == np.__version__
    assert found["keras"] == version("keras")
    assert found["python"].count(".") == 2


def test_changed_data_is_refused_with_both_fingerprints() -> None:
    check_same_data("a" * 64, "a" * 64, "sweep s")
    check_same_data(None, "a" * 64, "sweep s")  # recorded before the record existed: nothing to compare
    with pytest.raises(DataChanged, match=r"data fingerprint now bbbbbbbbbbbbbbbb, recorded aaaaaaaa"):
        check_same_data("a" * 64, "b" * 64, "sweep s")
    assert issubclass(DataChanged, DataError)  # the CLI's data errors exit 2


# --- the record on runs --------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    monkeypatch.chdir(tmp_path)
    return local_tracking_uri(tmp_path), tmp_path


def test_parent_and_child_runs_carry_the_record(store: tuple[str, Path]) -> None:
    uri, runs = store
    spec = spec_with()
    tracker = SweepTracker(uri, spec, "repro-test-1", runs, data_fingerprint=FINGERPRINT)
    tracker.start_sweep()
    run_id = tracker.start_trial("t1", CONFIG)
    client = MlflowClient(uri)
    child = client.get_run(run_id).data.tags
    parent = client.get_run(tracker.parent_run_id).data.tags
    assert set(TAGS) <= child.keys()
    assert child[TRIAL_HASH] == trial_hash(spec, CONFIG, FINGERPRINT)
    assert child[DATA_FINGERPRINT] == parent[DATA_FINGERPRINT] == FINGERPRINT
    assert child[SPEC_HASH] == parent[SPEC_HASH] == spec_hash(spec)
    assert child["repro.numpy"] == parent["repro.numpy"] == np.__version__


def test_reopening_a_sweep_with_other_data_changes_nothing(store: tuple[str, Path]) -> None:
    uri, runs = store
    first = SweepTracker(uri, spec_with(), "repro-test-2", runs, data_fingerprint=FINGERPRINT)
    first.start_sweep()
    first.start_trial("t1", CONFIG)
    first.finish_sweep("interrupted", {})
    again = SweepTracker(uri, spec_with(), "repro-test-2", runs, data_fingerprint="e" * 64)
    with pytest.raises(DataChanged, match="sweep repro-test-2"):
        again.start_sweep()
    client = MlflowClient(uri)
    assert client.get_run(first.parent_run_id).info.status == RunStatus.KILLED  # not reopened
    assert len(first.children()) == 1  # the unfinished trial's run was not dropped for a rerun
    same = SweepTracker(uri, spec_with(), "repro-test-2", runs, data_fingerprint=FINGERPRINT)
    assert same.start_sweep() == frozenset()
    assert client.get_run(first.parent_run_id).info.status == RunStatus.RUNNING


# --- what one seed fixes -------------------------------------------------------------------------


def _dense_kernels(model: Any) -> list[np.ndarray]:
    import keras

    return [np.asarray(layer.kernel) for layer in model.layers if isinstance(layer, keras.layers.Dense)]


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_one_seed_gives_every_placement_the_same_initial_dense_weights(dropout: float) -> None:
    import keras

    from sweep.models import build_model

    spec = spec_with()
    kernels = {}
    for placement in PLACEMENTS:
        keras.utils.set_random_seed(7)  # as the trainable seeds each trial
        kernels[placement] = _dense_kernels(build_model(spec.model, placement, dropout, (6,), 3))
    reference = kernels["none"]
    assert [k.shape for k in reference] == [(6, 8), (8, 8), (8, 3)]
    for placement, found in kernels.items():
        assert len(found) == len(reference)
        for a, b in zip(reference, found, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=placement)
    keras.utils.set_random_seed(8)
    other = _dense_kernels(build_model(spec.model, "none", dropout, (6,), 3))
    assert not np.array_equal(other[0], reference[0])


@pytest.fixture
def batches_seen(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """The input rows of every training batch, in order, as the compiled train step sees them."""
    import tensorflow as tf
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    seen: list[np.ndarray] = []
    train_step = TensorFlowTrainer.train_step

    def observed(self: Any, data: Any) -> Any:
        tf.py_function(lambda x: seen.append(x.numpy().copy()) or 0, [data[0]], Tout=tf.int32)
        return train_step(self, data)

    monkeypatch.setattr(TensorFlowTrainer, "train_step", observed)
    return seen


def test_one_seed_gives_every_placement_the_same_batch_order(batches_seen: list[np.ndarray]) -> None:
    from sweep.data import load_dataset
    from sweep.trainable import fit_trial

    spec = spec_with(dataset__split_per_seed=False)  # one training set, so orders compare row for row
    data = load_dataset(spec.dataset)
    orders = {}
    for placement, seed in (("before_activation", 1), ("after_dropout", 1), ("before_activation", 0)):
        batches_seen.clear()
        fit_trial({**CONFIG, "placement": placement, "seed": seed}, spec, data, lambda _: None)
        # Each training row once per epoch: rows are told apart by their values.
        order = np.concatenate(batches_seen)
        assert len(order) == spec.training.epochs * len(data.x_train)
        orders[placement, seed] = order
    np.testing.assert_array_equal(orders["before_activation", 1], orders["after_dropout", 1])
    assert not np.array_equal(orders["before_activation", 1], orders["before_activation", 0])
    first_epoch = orders["before_activation", 1][: len(data.x_train)]
    assert sorted(map(tuple, first_epoch)) == sorted(map(tuple, data.x_train))
    assert not np.array_equal(first_epoch, data.x_train)  # shuffled
    second_epoch = orders["before_activation", 1][len(data.x_train) : 2 * len(data.x_train)]
    assert not np.array_equal(first_epoch, second_epoch)  # reshuffled every epoch, not one order


def test_a_trial_trained_twice_in_one_process_gives_identical_metrics() -> None:
    from sweep.data import load_dataset
    from sweep.trainable import fit_trial

    spec = spec_with()
    data = load_dataset(spec.dataset)
    runs: list[list[dict[str, Any]]] = [[], []]
    for history in runs:
        fit_trial(CONFIG, spec, data, history.append)
    drop = ("peak_rss_mb", "train_time_s")
    first, second = ([{k: v for k, v in r.items() if k not in drop} for r in h] for h in runs)
    assert len(first) == spec.training.epochs
    assert first == second
