"""What runs on a Ray worker for one trial: Ray's side of it (the node, `tune.report`, the worker's
environment). The training itself is `sweep.training`; the names callers import stay here."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from sweep.code_bundle import CodeBundle, installed
from sweep.data import Dataset
from sweep.failures import NODE_NOTE, TrialDiverged
from sweep.spec import SweepSpec
from sweep.store.layout import LAST_RESULTS, METRICS, TEST_METRICS
from sweep.training.evaluation import bn_variance_shift, evaluate, final_evaluation, recalibrated_bn
from sweep.training.fit import (
    compile_for_training,
    fit_trial,
    peak_rss_mb,
    prepare_trial,
    training_batches,
)
from sweep.training.keras_setup import configure_tensorflow, fresh_keras_state, import_keras, training_device

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
    config: dict[str, Any], spec: SweepSpec, data: Dataset, code: tuple[CodeBundle, ...] = ()
) -> None:
    """Ray Tune function trainable: one (placement, dropout, optimizer, seed) trial.

    Every epoch's result names the node and the device; an exception carries them as a note, so
    the driver records where a trial failed even before its first epoch. `code`: the user's code
    the spec names by file, loaded from this node's copy of it (sweep.code_bundle).
    """
    node = node_facts()
    try:
        node.update(device_facts(spec))
        _train(config, installed(spec, code), data, node)
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


def _train(config: dict[str, Any], spec: SweepSpec, data: Dataset, node: dict[str, str]) -> None:
    from ray import tune

    # Tune adds node_ip, hostname and pid itself; the node id and the device it does not.
    mine = {k: node[k] for k in ("node_id", "gpu_ids", "device")}
    fit_trial(config, spec, data, lambda metrics: tune.report({**metrics, **mine}))
