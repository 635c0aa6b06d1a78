"""Load a sweep's data in a forked process while the driver imports Ray Tune and MLflow.

A fresh driver imports Ray Tune and MLflow on one core and then loads its data (scikit-learn's
import is most of that) before it can start a trial; another core idles meanwhile. `sweep run`
forks one child before those imports to load the data beside them, so a REST-submitted sweep, a
new driver each time, reaches its first trial sooner (figures: docs/performance.md, "REST service").

Forking is safe only before Ray, TensorFlow or any thread exists in this process; `prefetch`
declines (returns None) otherwise, and the driver loads the data itself as before.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from concurrent.futures import ProcessPoolExecutor

from sweep.data import DataError, Dataset, load_sweep_data
from sweep.spec import SweepSpec

# Modules that start threads or hold state a forked child must not inherit.
_UNSAFE_TO_FORK = ("ray", "tensorflow", "mlflow", "torch", "jax")


class DataPrefetch:
    """`load_sweep_data(spec)`, running in a forked child from construction; `result()` waits."""

    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
        self._future = self._pool.submit(load_sweep_data, spec)

    def result(self) -> Dataset:
        """The data, or the DataError `load_sweep_data` raised; the child and its threads are gone after."""
        try:
            return self._future.result()
        except DataError:
            raise
        except (OSError, RuntimeError, ValueError):
            # The child died (BrokenProcessPool is a RuntimeError) or its answer did not come back
            # whole: load here, which also raises the true error, if any, with its own traceback.
            return load_sweep_data(self.spec)
        finally:
            # The future is done, so this waits only for the child and the pool's threads to end
            # (milliseconds). Left running, they race the interpreter's exit: the pool's exit hook
            # then writes to a pipe they just closed ("Exception ignored ... Bad file descriptor").
            self._pool.shutdown(wait=True)


def prefetch(spec: SweepSpec) -> DataPrefetch | None:
    """Start loading `spec`'s data beside this process, or None where forking is not safe."""
    if sys.platform != "linux" or threading.active_count() > 1:
        return None
    if any(name in sys.modules for name in _UNSAFE_TO_FORK):
        return None
    try:
        return DataPrefetch(spec)
    except OSError:  # no process to spare: the driver loads the data itself
        return None
