"""sweep: distributed Keras sweeps on Ray Tune, tracked in MLflow.

Its first question: where does BatchNormalization go?
"""

from sweep.analysis import Analysis, analyse
from sweep.data import DataError, Dataset, load_dataset
from sweep.models import BLOCK_ORDER, build_model, build_optimizer
from sweep.publish import PublishedReport, publish_report
from sweep.report import render_markdown, write_report
from sweep.results import SweepNotFound, find_sweep, learning_curves, list_sweeps, trial_table
from sweep.runner import SweepResult, TrialEvent, new_sweep_id, resume_sweep, run_sweep
from sweep.spec import SpecError, SweepSpec, load_spec, parse_spec

__version__ = "0.1.0"

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
