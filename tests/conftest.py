"""Shared test set-up: Keras on TensorFlow, quiet logs, the example specs."""

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from sweep.settings import apply_environment

# The test process is an entry point, as the CLI is: MLflow, Ray and Tune get the library's environment.
apply_environment()

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def examples() -> Path:
    return EXAMPLES
