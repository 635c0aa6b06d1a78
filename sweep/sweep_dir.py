"""A sweep's folder under the runs dir: the id that names it, and the spec kept there.

Light on purpose (no Ray, no Keras): the REST service names sweeps and `sweep reproduce` reads
their specs without paying for Ray Tune's import.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

from sweep.spec import SpecError, SweepSpec, load_spec, parse_spec, parse_spec_text


def new_sweep_id(spec: SweepSpec) -> str:
    """`name-YYYYmmdd-HHMMSS-xxxx`: sortable, readable and unique."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{spec.name}-{stamp}-{secrets.token_hex(2)}"


def load_sweep_spec(
    sweep_id: str, runs_dir: str | Path = "runs", tracking_uri: str | None = None
) -> SweepSpec:
    """A sweep's spec: from its folder under `runs_dir`, else from its parent run in MLflow."""
    path = Path(runs_dir) / sweep_id / "spec.yaml"
    if path.is_file():
        return load_spec(path)
    from mlflow.tracking import MlflowClient

    from sweep.results import SweepNotFound, find_sweep
    from sweep.settings import Settings

    uri = Settings().resolve_tracking_uri(Path(runs_dir).resolve(), tracking_uri, None)
    try:
        record = find_sweep(MlflowClient(uri), sweep_id)
    except SweepNotFound as err:
        raise SpecError([f"no sweep of that id under {runs_dir} or in {uri}"], sweep_id) from err
    if not record.spec_yaml:
        raise SpecError([f"its parent run in {uri} has no spec.yaml"], sweep_id)
    source = f"{sweep_id} (spec.yaml in MLflow)"
    return parse_spec(parse_spec_text(record.spec_yaml, source=source), source)
