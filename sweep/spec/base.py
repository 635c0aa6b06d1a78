"""The base of every spec model: unknown fields refused, values frozen, no inf or nan."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SpecModel(BaseModel):
    """A part of the spec, or the whole: `extra="forbid"`, `frozen=True`."""

    # inf and nan are no setting's value (YAML reads .inf and .nan, JSON NaN and 1e999).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
