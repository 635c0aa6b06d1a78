"""The sweep spec: pydantic models, YAML/JSON loading and readable error messages.

- `base`, `dataset`, `model`, `search`, `sections`, `sweep_spec`: the models, a section a module where it
  has rules of its own, and `SweepSpec` with the rules between sections;
- `errors`: `SpecError` and pydantic's errors as `where: what (got what)` lines;
- `reader`: the hardened YAML/JSON reader (text into a mapping);
- `loading`: a file or mapping into a `SweepSpec`, with `--set` overrides.
"""

from sweep.spec.dataset import (
    BUILTIN_CLASSES,
    BUILTIN_ROWS,
    IMAGE_CHANNELS,
    KERAS_CLASSES,
    MAX_CLASSES,
    MAX_FEATURES,
    MAX_GENERATED_VALUES,
    MAX_LOADED_VALUES,
    MAX_SEED,
    DatasetSpec,
    row_problems,
    split_sizes,
)
from sweep.spec.errors import MAX_ERRORS, SpecError, format_errors
from sweep.spec.loading import apply_overrides, load_spec, parse_spec, resolve_data_path
from sweep.spec.model import MAX_ARGS_BYTES, MAX_UNITS, ModelSpec
from sweep.spec.reader import MAX_SPEC_BYTES, MAX_SPEC_DEPTH, MAX_SPEC_NODES, parse_spec_text, read_spec_file
from sweep.spec.search import (
    OPTIMIZER_ARGS,
    PLACEMENTS,
    AdaptiveSeeds,
    DropoutAxis,
    OptimizerSpec,
    Placement,
    Range,
    SearchSpec,
)
from sweep.spec.sections import (
    AnalysisSpec,
    ResourcesSpec,
    StrategySpec,
    TrackingSpec,
    TrainingSpec,
)
from sweep.spec.sweep_spec import SweepSpec

__all__ = [
    "BUILTIN_CLASSES",
    "BUILTIN_ROWS",
    "IMAGE_CHANNELS",
    "KERAS_CLASSES",
    "MAX_ARGS_BYTES",
    "MAX_CLASSES",
    "MAX_ERRORS",
    "MAX_FEATURES",
    "MAX_GENERATED_VALUES",
    "MAX_LOADED_VALUES",
    "MAX_SEED",
    "MAX_SPEC_BYTES",
    "MAX_SPEC_DEPTH",
    "MAX_SPEC_NODES",
    "MAX_UNITS",
    "OPTIMIZER_ARGS",
    "PLACEMENTS",
    "AdaptiveSeeds",
    "AnalysisSpec",
    "DatasetSpec",
    "DropoutAxis",
    "ModelSpec",
    "OptimizerSpec",
    "Placement",
    "Range",
    "ResourcesSpec",
    "SearchSpec",
    "SpecError",
    "StrategySpec",
    "SweepSpec",
    "TrackingSpec",
    "TrainingSpec",
    "apply_overrides",
    "format_errors",
    "load_spec",
    "parse_spec",
    "parse_spec_text",
    "read_spec_file",
    "resolve_data_path",
    "row_problems",
    "split_sizes",
]
