"""A spec file, or a mapping, into a validated SweepSpec: `--set` overrides, data paths."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sweep.refs import with_base
from sweep.spec.errors import SpecError, format_errors
from sweep.spec.reader import SpecLoader, read_spec_file
from sweep.spec.sweep_spec import SweepSpec


def parse_spec(data: Any, source: str | None = None) -> SweepSpec:
    """Validate a mapping (from YAML or JSON) into a SweepSpec, or raise SpecError."""
    if not isinstance(data, Mapping):
        kind = "empty" if data is None else type(data).__name__
        raise SpecError([f"the top level must be a mapping of fields (got {kind})"], source)
    try:
        return SweepSpec.model_validate(dict(data))
    except ValidationError as err:
        raise SpecError(format_errors(err), source) from None


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply `key.path=value` overrides (value parsed as YAML) to a spec mapping."""
    errors = []
    out = json.loads(json.dumps(data))  # a deep copy of plain data
    for item in overrides:
        key, sep, raw = item.partition("=")
        shown = item if item.isprintable() else repr(item)  # a newline would split the error line
        if not sep or not key.strip():
            errors.append(f"--set {shown}: expected key.path=value")
            continue
        try:  # the spec file's rules: `--set name=2024-06-01` is text, not a date
            value = yaml.load(raw, Loader=SpecLoader)
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                errors.append(f"--set {shown}: {part!r} is not a mapping")
                break
            node = child
        else:
            node[parts[-1]] = value
    if errors:
        raise SpecError(errors)
    return out


def resolve_data_path(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative paths in a spec are relative to the spec file's folder, not to the working directory:
    `dataset.path`, and the file REFs `model.builder` and `dataset.loader` (sweep.refs)."""
    dataset = data.get("dataset")
    if isinstance(dataset, dict) and isinstance(dataset.get("path"), str) and dataset["path"]:
        path = Path(dataset["path"]).expanduser()
        if not path.is_absolute():
            data = {**data, "dataset": {**dataset, "path": str(base / path)}}
    for section, field in (("model", "builder"), ("dataset", "loader")):
        part = data.get(section)
        if isinstance(part, dict) and isinstance(part.get(field), str):
            data = {**data, section: {**part, field: with_base(part[field], base)}}
    return data


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> SweepSpec:
    """Load, override and validate a spec file.

    A relative `dataset.path` in the file is taken from the file's folder; one given by an
    override (`--set dataset.path=...`) from the working directory, as a shell user expects.
    """
    data = resolve_data_path(read_spec_file(path), Path(path).resolve().parent)
    data = apply_overrides(data, overrides)
    return parse_spec(data, str(path))
