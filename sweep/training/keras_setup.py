"""Keras and TensorFlow in a worker: imported lean, threads matched to the trial, reset between trials."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_configured_threads: int | None = None
_configured_gpus = False

# Keras imports these when installed, for its plotting helpers and scikit-learn wrappers, which a
# trial never uses; they are a good part of a worker's Keras import (docs/performance.md).
_KERAS_EXTRAS_UNUSED_IN_TRIALS = ("matplotlib", "sklearn")


def import_keras() -> Any:
    """`import keras` for a trial: the first time in a process, without Keras' optional extras.

    The extras are hidden from Keras only while it imports (the pinned Keras guards those imports
    with `except ImportError`; tests/unit/test_trainable.py checks it still does); the process can
    import them normally afterwards.
    """
    if "keras" in sys.modules:
        return sys.modules["keras"]
    hidden = [name for name in _KERAS_EXTRAS_UNUSED_IN_TRIALS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` raise ImportError
    try:
        import keras
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]
    return keras


@contextmanager
def tensorflow_quiet() -> Iterator[None]:
    """TensorFlow's start-up lines (absl, CUDA probing) kept off stderr.

    Its C++ side writes some of them to file descriptor 2 before TF_CPP_MIN_LOG_LEVEL is read,
    so the descriptor itself points at /dev/null meanwhile; a Python error still shows, after it.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def configure_tensorflow(cpus: float, use_gpus: bool = True) -> None:
    """Match TensorFlow's thread pools to the trial's CPUs, and set up its GPUs, once per process.

    GPUs are set up by the first call (before anything touches them; TensorFlow refuses later):
    each visible one takes memory as needed, not all of it, so trials given a fraction of a GPU
    (`resources.gpus_per_trial: 0.5`) share it. `use_gpus=False` hides them from TensorFlow: a trial
    Ray gave no GPU trains on the CPU (Ray leaves CUDA_VISIBLE_DEVICES alone for such a worker).
    """
    global _configured_threads, _configured_gpus
    import_keras()  # `import tensorflow` loads Keras with all its extras unless Keras came first
    import tensorflow as tf

    if not _configured_gpus:
        _configured_gpus = True
        gpus = tf.config.list_physical_devices("GPU")
        try:
            if use_gpus:
                for gpu in gpus:
                    tf.config.experimental.set_memory_growth(gpu, True)
            elif gpus:
                tf.config.set_visible_devices([], "GPU")
        except RuntimeError:
            pass  # the runtime already started in this process: its devices stay as they are
    threads = max(1, int(cpus))
    if _configured_threads == threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # the runtime already started in this process; its pools stay as they are
    _configured_threads = threads


def training_device() -> str:
    """What TensorFlow trains on in this process: its visible GPUs' names, or `cpu`."""
    import tensorflow as tf

    names = []
    for gpu in tf.config.get_visible_devices("GPU"):
        try:
            names.append(str(tf.config.experimental.get_device_details(gpu).get("device_name") or gpu.name))
        except (RuntimeError, ValueError):  # no details for this device: its TensorFlow name
            names.append(gpu.name)
    return ", ".join(names) or "cpu"


def fresh_keras_state() -> None:
    """Drop the last trial's models and graphs, then freeze what survives.

    `clear_session` runs a full garbage collection, which walks every object TensorFlow and the
    earlier trials left alive (hundreds of thousands, more with each trial). `gc.freeze()` moves
    those survivors out of the collector's sight, so this and every collection during the next
    trial's tracing only walk what that trial creates (docs/performance.md). Results are
    unchanged: only when garbage is found changes.
    """
    import keras

    keras.backend.clear_session()  # also gc.collect(): the last trial's garbage goes first
    gc.freeze()
