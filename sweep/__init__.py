"""sweep: distributed Keras sweeps on Ray Tune, tracked in MLflow.

Its first question: where does BatchNormalization go?

The public API is imported lazily (PEP 562): a Ray worker that imports `sweep.trainable` must not
pay for MLflow, matplotlib and scipy, which only the driver uses (about 3 s per worker start).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "Analysis": "sweep.analysis",
    "analyse": "sweep.analysis",
    "DataError": "sweep.data",
    "Dataset": "sweep.data",
    "load_dataset": "sweep.data",
    "BLOCK_ORDER": "sweep.blocks",
    "build_model": "sweep.models",
    "build_optimizer": "sweep.models",
    "PublishedReport": "sweep.publish",
    "publish_report": "sweep.publish",
    "render_markdown": "sweep.report",
    "write_report": "sweep.report",
    "SweepNotFound": "sweep.results",
    "find_sweep": "sweep.results",
    "learning_curves": "sweep.results",
    "list_sweeps": "sweep.results",
    "trial_table": "sweep.results",
    "SweepResult": "sweep.runner",
    "TrialEvent": "sweep.recorder",
    "new_sweep_id": "sweep.sweep_dir",
    "resume_sweep": "sweep.runner",
    "run_sweep": "sweep.runner",
    "SpecError": "sweep.spec",
    "SweepSpec": "sweep.spec",
    "load_spec": "sweep.spec",
    "parse_spec": "sweep.spec",
}

__all__ = [
    "BLOCK_ORDER",
    "Analysis",
    "DataError",
    "Dataset",
    "PublishedReport",
    "SpecError",
    "SweepNotFound",
    "SweepResult",
    "SweepSpec",
    "TrialEvent",
    "analyse",
    "build_model",
    "build_optimizer",
    "find_sweep",
    "learning_curves",
    "list_sweeps",
    "load_dataset",
    "load_spec",
    "new_sweep_id",
    "parse_spec",
    "publish_report",
    "render_markdown",
    "resume_sweep",
    "run_sweep",
    "trial_table",
    "write_report",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sweep' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly
    from sweep.analysis import Analysis, analyse
    from sweep.blocks import BLOCK_ORDER
    from sweep.data import DataError, Dataset, load_dataset
    from sweep.models import build_model, build_optimizer
    from sweep.publish import PublishedReport, publish_report
    from sweep.recorder import TrialEvent
    from sweep.report import render_markdown, write_report
    from sweep.results import SweepNotFound, find_sweep, learning_curves, list_sweeps, trial_table
    from sweep.runner import SweepResult, resume_sweep, run_sweep
    from sweep.spec import SpecError, SweepSpec, load_spec, parse_spec
    from sweep.sweep_dir import new_sweep_id
