"""New local MLflow stores start as a copy of an empty, already-migrated SQLite database.

MLflow builds a new SQLite store by running its whole Alembic migration history (seconds of CPU,
on the critical path of every first sweep in a folder, and of every test; docs/performance.md). The result is
the same for every store of one MLflow version, so it is built once, kept in a cache folder, and
copied. The template holds the schema only: MLflow adds its Default experiment to the copy when it
opens it, with that store's own artifact location and creation time, as it would have anyway.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sweep.settings import Settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

_SQLITE = "sqlite:///"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI, or None for any other store."""
    if not uri.startswith(_SQLITE):
        return None
    path = uri[len(_SQLITE) :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def template_path() -> Path:
    import mlflow

    return Settings().cache_folder() / f"mlflow-{mlflow.__version__}-empty.db"


def _build_template(target: Path) -> None:
    """Let MLflow create and migrate a store, then take its Default experiment out again."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".template-") as tmp:
        db = Path(tmp) / "mlflow.db"
        store = SqlAlchemyStore(f"{_SQLITE}{db}", str(Path(tmp) / "artifacts"))
        store.engine.dispose()
        with contextlib.closing(sqlite3.connect(db)) as conn, conn:
            conn.execute("DELETE FROM experiment_tags WHERE experiment_id = 0")
            conn.execute("DELETE FROM experiments WHERE experiment_id = 0")
        os.replace(db, target)  # atomic: a concurrent builder's identical file may win, harmlessly


def seed_local_store(uri: str) -> bool:
    """Create the SQLite store behind `uri` from the cached template, if it does not exist yet.

    Returns whether it did. Any other store, an existing file, or a failure (no writable cache
    folder, say) leaves the store to MLflow, which then creates it the slow way.
    """
    path = sqlite_path(uri)
    if path is None or path.exists():
        return False
    try:
        template = template_path()
        if not template.is_file():
            _build_template(template)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        shutil.copyfile(template, partial)
        try:
            os.link(partial, path)  # creates `path` only if no other driver created it meanwhile
        except FileExistsError:
            return False
        finally:
            partial.unlink(missing_ok=True)
    except Exception as err:  # the slow path still works
        log.debug("no store template for %s: %s", uri, err)
        return False
    return True


def open_store(uri: str) -> MlflowClient:
    """An `MlflowClient` on `uri`, a new local store first seeded from the template.

    MLflow migrates a new SQLite file in place without a lock: a command that reads (`sweep list`
    in a new folder) and a driver that starts there at the same time would both build its tables,
    and one fails with "table ... already exists". A seeded store appears whole, in one link.
    """
    from mlflow.tracking import MlflowClient

    seed_local_store(uri)
    return MlflowClient(uri)
