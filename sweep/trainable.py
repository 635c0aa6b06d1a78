"""What runs on a Ray worker for one trial: Ray's side of it (the node, `tune.report`, the worker's
environment). The training itself is `sweep.training`; the names callers import stay here."""

from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from sweep.code_bundle import CodeBundle, installed
from sweep.data import Dataset
from sweep.failures import NODE_NOTE, TrialDiverged
from sweep.spec import SweepSpec
from sweep.store.layout import LAST_RESULTS, METRICS, TEST_METRICS
from sweep.training.checkpoints import CheckpointError, read_meta, restore_state, save_state
from sweep.training.evaluation import bn_variance_shift, evaluate, final_evaluation, recalibrated_bn
from sweep.training.fit import (
    compile_for_training,
    fit_trial,
    peak_rss_mb,
    prepare_trial,
    training_batches,
)
from sweep.training.keras_setup import configure_tensorflow, fresh_keras_state, import_keras, training_device
from sweep.trial import TrialConfig
from sweep.trial_checkpoints import checkpoint_name, read_index

__all__ = [
    "LAST_RESULTS",
    "METRICS",
    "TEST_METRICS",
    "TrialDiverged",
    "bn_variance_shift",
    "compile_for_training",
    "configure_tensorflow",
    "device_facts",
    "evaluate",
    "final_evaluation",
    "fit_trial",
    "fresh_keras_state",
    "import_keras",
    "node_facts",
    "peak_rss_mb",
    "prepare_trial",
    "recalibrated_bn",
    "train_trial",
    "training_batches",
]


def node_facts() -> dict[str, str]:
    """Which Ray node and process run this trial (nodes of one host share an ip: the id tells)."""
    import ray

    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "hostname": socket.gethostname(),
        "pid": str(os.getpid()),
    }


def train_trial(
    config: dict[str, Any],
    spec: SweepSpec,
    data: Dataset,
    code: tuple[CodeBundle, ...] = (),
    sweep_dir: str | None = None,
) -> None:
    """Ray Tune function trainable: one (placement, dropout, optimizer, seed) trial.

    Every epoch's result names the node and the device; an exception carries them as a note, so
    the driver records where a trial failed even before its first epoch. `code`: the user's code
    the spec names by file, loaded from this node's copy of it (sweep.code_bundle). `sweep_dir`:
    the sweep's folder, where a resumed sweep's index of checkpoints to continue from is
    (`sweep.trial_checkpoints`).
    """
    node = node_facts()
    try:
        node.update(device_facts(spec))
        # Tune adds node_ip, hostname and pid itself; the node id and the device it does not.
        mine = {k: node[k] for k in ("node_id", "gpu_ids", "device")}
        name = checkpoint_name(TrialConfig.from_tune(config, spec))
        checkpoints = TuneCheckpoints(spec, name, mine, sweep_dir)
        fit_trial(config, installed(spec, code), data, checkpoints.plain_report, checkpoints=checkpoints)
    except Exception as err:
        err.add_note(NODE_NOTE + json.dumps(node))
        raise


def device_facts(spec: SweepSpec) -> dict[str, str]:
    """TensorFlow set up for the GPUs Ray gave this trial (none: the CPU), and what it trains on:
    `gpu_ids` (Ray's, comma-separated; empty for none) and `device` (the GPUs' names, or cpu)."""
    import ray

    gpu_ids = [str(i) for i in ray.get_gpu_ids()]
    configure_tensorflow(spec.resources.cpus_per_trial, use_gpus=bool(gpu_ids))
    return {"gpu_ids": ",".join(gpu_ids), "device": training_device()}


class TuneCheckpoints:
    """A trial's checkpoints through Ray Tune: restored from Tune's latest (a retry) or the resume
    index (a resumed sweep), saved every `training.checkpoint_every` epochs with `tune.report`.

    Each result says where this attempt began (`resumed_from_epoch`) and, when a checkpoint could
    not be restored and the trial started over, why (`checkpoint_error`).
    """

    def __init__(self, spec: SweepSpec, trial: str, facts: dict[str, str], sweep_dir: str | None) -> None:
        self.every = spec.training.checkpoint_every
        self.epochs = spec.training.epochs
        self.keep_last = spec.resources.keep_checkpoints_after  # else the last epoch's is removed at once
        self.trial, self.sweep_dir = trial, sweep_dir
        self.facts: dict[str, Any] = {**facts, "resumed_from_epoch": 0}  # in every result
        self.rows: list[dict[str, Any]] = []  # every epoch's metrics so far, kept in each checkpoint

    def _source(self) -> str | None:
        from ray import tune

        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            return str(checkpoint.path)  # the sweep's storage is a path every node sees
        return read_index(Path(self.sweep_dir)).get(self.trial) if self.sweep_dir else None

    def restore(self, model: Any) -> int:
        source = self._source()
        if source is None:
            return 0
        try:
            if read_meta(source)["epoch"] >= self.epochs:
                raise CheckpointError("the checkpoint is of the last epoch: nothing left to train")
            restored = restore_state(model, source, trial=self.trial)
        except CheckpointError as err:
            self.facts["checkpoint_error"] = f"{source}: {err}"[:2000]
            return 0
        self.rows = list(restored.history)
        self.facts["resumed_from_epoch"] = restored.epoch
        return restored.epoch

    def plain_report(self, metrics: dict[str, Any]) -> None:
        from ray import tune

        tune.report({**metrics, **self.facts})

    def report(self, model: Any, metrics: dict[str, Any]) -> None:
        from ray import tune

        epoch = int(metrics["epoch"])
        self.rows.append({k: metrics[k] for k in ("epoch", *METRICS) if k in metrics})
        last = epoch >= self.epochs
        if not self.every or epoch % self.every or (last and not self.keep_last):
            self.plain_report(metrics)
            return
        with tempfile.TemporaryDirectory(prefix="sweep-ckpt-") as folder:
            save_state(model, folder, epoch=epoch, trial=self.trial, history=self.rows)
            tune.report({**metrics, **self.facts}, checkpoint=tune.Checkpoint.from_directory(folder))
