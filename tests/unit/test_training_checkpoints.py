"""A trial's training state saved and restored: an interrupted trial ends where a straight one does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sweep.training.checkpoints import (
    META_FILE,
    STATE_FILE,
    CheckpointError,
    read_meta,
    restore_state,
    save_state,
)

CONFIG = {"placement": "after_dropout", "dropout": 0.5, "optimizer": "sgd", "seed": 3}


def _spec(epochs: int = 4) -> Any:
    from sweep import parse_spec

    return parse_spec(
        {
            "name": "ckpt",
            "dataset": {"n_samples": 300, "n_features": 6, "seed": 1, "test_split": 0.2},
            "model": {"hidden_units": [16, 16]},
            "search": {
                "placement": ["after_dropout"],
                "dropout": [0.5],
                # decay and momentum: the optimizer's step count and slots must come back too
                "optimizer": [{"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "decay": 0.01}],
            },
            "training": {"epochs": epochs, "batch_size": 16},
        }
    )


class DirCheckpoints:
    """Saves after `save_at` epochs into `folder`; restores from `restore_from` if given."""

    def __init__(self, report: Any, folder: Path, save_at: int = 0, restore_from: Path | None = None):
        self.report_fn, self.folder, self.save_at, self.restore_from = report, folder, save_at, restore_from
        self.rows: list[dict[str, Any]] = []

    def restore(self, model: Any) -> int:
        if self.restore_from is None:
            return 0
        restored = restore_state(model, self.restore_from, trial="t")
        self.rows = restored.history
        return restored.epoch

    def report(self, model: Any, metrics: dict[str, Any]) -> None:
        self.rows.append({k: metrics[k] for k in ("epoch", "val_accuracy")})
        if metrics["epoch"] == self.save_at:
            save_state(model, self.folder, epoch=self.save_at, trial="t", history=self.rows)
        self.report_fn(metrics)


def _fit(epochs: int, checkpoints: DirCheckpoints | None = None) -> list[dict[str, Any]]:
    from sweep.data import load_dataset
    from sweep.training.fit import fit_trial

    spec = _spec(epochs)
    history: list[dict[str, Any]] = []
    if checkpoints is not None:
        checkpoints.report_fn = history.append
    fit_trial(CONFIG, spec, load_dataset(spec.dataset), history.append, checkpoints=checkpoints)
    return history


def test_a_trial_restored_at_epoch_2_ends_with_the_metrics_of_4_straight_epochs(tmp_path: Path) -> None:
    straight = _fit(4)
    first = _fit(4, DirCheckpoints(None, tmp_path / "ck", save_at=2))
    assert [r["epoch"] for r in first] == [1, 2, 3, 4]
    assert read_meta(tmp_path / "ck")["epoch"] == 2
    resumed = _fit(4, DirCheckpoints(None, tmp_path / "unused", restore_from=tmp_path / "ck"))
    assert [r["epoch"] for r in resumed] == [3, 4]  # continues at the next epoch
    keys = {"loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"}
    for a, b in zip(straight[2:], resumed, strict=True):
        assert {k: a[k] for k in keys & a.keys()} == {k: b[k] for k in keys & b.keys()}
    assert resumed[-1]["val_accuracy_bn_recalibrated"] == straight[-1]["val_accuracy_bn_recalibrated"]


def test_without_restoring_the_shuffle_order_the_numbers_differ(tmp_path: Path) -> None:
    # The test above could pass if epoch order did not matter: here epoch 3 is trained on epoch 1's
    # order (the iterators not advanced), and the loss differs.
    from sweep.training import fit

    straight = _fit(4)
    _fit(4, DirCheckpoints(None, tmp_path / "ck", save_at=2))
    real = fit.training_batches
    fit.training_batches = lambda data, batch_size, seed, epochs_done=0: real(data, batch_size, seed, 0)  # type: ignore[assignment]
    try:
        wrong = _fit(4, DirCheckpoints(None, tmp_path / "x", restore_from=tmp_path / "ck"))
    finally:
        fit.training_batches = real  # type: ignore[assignment]
    assert wrong[-1]["loss"] != straight[-1]["loss"]


def _model() -> Any:
    from sweep.data import load_dataset
    from sweep.training.fit import prepare_trial

    spec = _spec()
    return prepare_trial(CONFIG, spec, load_dataset(spec.dataset))


def test_a_broken_checkpoint_is_refused_with_its_reason_and_changes_nothing(tmp_path: Path) -> None:
    model = _model()
    save_state(model, tmp_path / "ok", epoch=1, trial="t", history=[])
    before = [np.array(v) for v in model.variables]
    with pytest.raises(CheckpointError, match=r"no checkpoint\.json"):
        restore_state(model, tmp_path / "missing", trial="t")
    with pytest.raises(CheckpointError, match="of trial 't', not 'u'"):
        restore_state(model, tmp_path / "ok", trial="u")
    (tmp_path / "ok" / STATE_FILE).write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(CheckpointError, match=r"state\.npz is unreadable"):
        restore_state(model, tmp_path / "ok", trial="t")
    save_state(model, tmp_path / "ok", epoch=1, trial="t", history=[])
    whole = (tmp_path / "ok" / STATE_FILE).read_bytes()
    (tmp_path / "ok" / STATE_FILE).write_bytes(whole[: len(whole) // 2])  # a copy cut short
    with pytest.raises(CheckpointError, match=rf"state\.npz is unreadable: it has {len(whole) // 2} bytes"):
        restore_state(model, tmp_path / "ok", trial="t")
    (tmp_path / "ok" / META_FILE).write_text("{")
    with pytest.raises(CheckpointError, match="unreadable"):
        restore_state(model, tmp_path / "ok", trial="t")
    for a, b in zip(before, model.variables, strict=True):
        np.testing.assert_array_equal(a, np.array(b))
