"""Keras and TensorFlow in a worker: imported lean, threads matched to the trial, reset between trials."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_configured_threads: int | None = None

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


def configure_tensorflow(cpus: float) -> None:
    """Match TensorFlow's thread pools to the trial's CPUs, once per worker process."""
    global _configured_threads
    threads = max(1, int(cpus))
    if _configured_threads == threads:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        for gpu in tf.config.list_physical_devices("GPU"):
            # Fractional gpus_per_trial share one card: take memory as needed, not all of it.
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        pass  # the runtime already started in this process; its pools stay as they are
    _configured_threads = threads


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
