"""A sweep's folder under the runs dir: the id that names it, the spec kept there, the copies of
its data and code, and the folder of each attempt (first run, then each resume).

Light on purpose (no Ray, no Keras): the REST service names sweeps and `sweep reproduce` reads
their specs without paying for Ray Tune's import.
"""

from __future__ import annotations

import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path

from sweep.code_bundle import CodeBundle, kept_in
from sweep.spec import SpecError, SweepSpec, load_spec, parse_spec, parse_spec_text

TRACKING_URI_FILE = "tracking-uri"  # in the sweep's folder: the store its runs went to


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
    from sweep.results import SweepNotFound, find_sweep
    from sweep.settings import Settings
    from sweep.store.template import open_store

    uri = Settings().resolve_tracking_uri(Path(runs_dir).resolve(), tracking_uri, None)
    try:
        record = find_sweep(open_store(uri), sweep_id)
    except SweepNotFound as err:
        raise SpecError([f"no sweep of that id under {runs_dir} or in {uri}"], sweep_id) from err
    if not record.spec_yaml:
        raise SpecError([f"its parent run in {uri} has no spec.yaml"], sweep_id)
    source = f"{sweep_id} (spec.yaml in MLflow)"
    return parse_spec(parse_spec_text(record.spec_yaml, source=source), source)


def attempt_name(sweep_dir: Path) -> str:
    """Tune keeps each attempt (first run, then each resume) in its own folder."""
    n = 1 + sum(1 for p in sweep_dir.glob("attempt-*") if p.is_dir() and p.name[8:].isdigit())
    return f"attempt-{n}"


def keep_data_with_sweep(spec: SweepSpec, sweep_dir: Path, code: tuple[CodeBundle, ...]) -> SweepSpec:
    """Copy a data file and the code files the spec names into the sweep's folder and point the
    spec at the copies.

    Inside a Ray job the spec's own folder is a temporary working directory; the copies (beside
    spec.yaml, relative paths) are what `sweep resume` and `sweep reproduce` read later, wherever
    the sweep started.
    """
    if spec.dataset.path is None and not code:
        return spec
    data = spec.model_dump(mode="json", exclude={"trial_count"})
    if spec.dataset.path is not None:
        source = Path(spec.dataset.path).resolve()
        target = sweep_dir / "data" / source.name
        if source != target:
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():  # a folder of images
                shutil.copytree(source, target, dirs_exist_ok=True)
            else:
                shutil.copyfile(source, target)
        data["dataset"]["path"] = f"data/{source.name}"
    return parse_spec(kept_in(data, code, sweep_dir))
