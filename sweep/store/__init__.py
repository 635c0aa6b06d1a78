"""The sweep's store: the MLflow layout of its runs, and the one object that reads and writes them.

- `layout`: every tag, param, metric and artifact name a sweep's runs carry, and the metric schema.
- `SweepStore`: the parent-run and child-run queries, and the writes (one place each).
- `SweepRecord` / `TrialRecord`: a parent run and a trial's run, read once.
- `template`: a new local SQLite store copied from an empty, migrated one (cached per MLflow version),
  and `open_store`, the client a command reads a store with (a missing local one seeded first).

Names are imported lazily (PEP 562): a Ray worker that reads the metric schema from `layout` does
not import MLflow. Nothing here imports Ray or TensorFlow: the REST service and `sweep reproduce`
read sweeps through it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "SweepNotFound": "sweep.store.storage",
    "SweepStore": "sweep.store.storage",
    "SweepRecord": "sweep.store.records",
    "TrialRecord": "sweep.store.records",
}

__all__ = ["SweepNotFound", "SweepRecord", "SweepStore", "TrialRecord"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sweep.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from sweep.store.records import SweepRecord, TrialRecord
    from sweep.store.storage import SweepNotFound, SweepStore
