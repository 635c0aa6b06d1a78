"""The library's settings: one class read from SWEEP_* variables, and the environment it gives
MLflow, Ray and Tune.

Nothing here runs at import. Each entry point (the CLI, `run_sweep` / `resume_sweep`,
`reproduce_trial`, `sweep serve`) calls `apply_environment` once before MLflow, Ray or Tune read
their variables; what the caller set already stays as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

PATIENCE_ENV = "SWEEP_TRACKING_PATIENCE_S"


class Settings(BaseSettings):
    """Everything the library can be told, each as SWEEP_<NAME> (MLflow's own variable as itself)."""

    model_config = SettingsConfigDict(env_prefix="SWEEP_", frozen=True, extra="ignore")

    # Where sweeps and the local MLflow store live (the CLI's --runs-dir; on a cluster, a path
    # every node sees). Unset: ./runs, and a job submitted without it uses the cluster's own.
    runs_dir: Path | None = None
    # MLflow's own variable: below --tracking-uri, above a spec's tracking.uri.
    mlflow_tracking_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI")
    )
    # How long one write may keep retrying before the sweep gives up on the tracking server.
    tracking_patience_s: float = Field(default=600.0, ge=0)
    # The migrated empty MLflow store is kept here (unset: $XDG_CACHE_HOME/sweep, ~/.cache/sweep).
    cache_dir: Path | None = None
    # Sweeps whose driver runs at once on a head started here (`sweep serve`'s own; compose's
    # through services/start-head.sh); the others wait, queued (sweep.admission, docs/api.md#queue).
    max_running_sweeps: int = Field(default=2, ge=1)
    # Beyond this many queued sweeps the REST service refuses new ones (429).
    max_queued_sweeps: int = Field(default=1000, ge=0)
    # A failing sweep shows its traceback.
    debug: bool = False

    def named_tracking_uri(self, given: str | None) -> str | None:
        """The tracking URI a caller named: `given` (--tracking-uri), else MLFLOW_TRACKING_URI."""
        return given or self.mlflow_tracking_uri or None

    def resolve_tracking_uri(self, runs_dir: Path, given: str | None, spec_uri: str | None) -> str:
        """--tracking-uri, else MLFLOW_TRACKING_URI, else the spec's, else the local store."""
        return self.named_tracking_uri(given) or spec_uri or local_tracking_uri(runs_dir)

    def cache_folder(self) -> Path:
        """SWEEP_CACHE_DIR, else `$XDG_CACHE_HOME/sweep`, else `~/.cache/sweep`."""
        if self.cache_dir:
            return self.cache_dir
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sweep"

    def environment(self) -> dict[str, str]:
        """What MLflow, Ray and Tune read from the environment, as this program wants it."""
        return {
            # MLflow's client retries each request for minutes by default (7 tries, backoff factor
            # 2) before `sweep.retrying` sees the error; a short inner loop lets the tracking
            # patience set the pace instead.
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
            # On a server URI MLflow prints "View run ... / View experiment ..." for every run it
            # ends (and reads the run back to do it): lines in the middle of the progress display.
            "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
            # Reading a sweep downloads spec.yaml; MLflow would draw a progress bar for that file.
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            # Ray Tune's own CSV/JSON/TensorBoard loggers duplicate what MLflow records.
            "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
            "RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS": "0",
            "RAY_DEDUP_LOGS": "0",
            # Resume reads MLflow, not Tune's experiment snapshots: take them rarely, they cost
            # driver CPU.
            "TUNE_GLOBAL_CHECKPOINT_S": "300",
            # The CLI draws its own progress; with the legacy reporter, verbose=0 keeps Tune silent.
            "RAY_AIR_NEW_OUTPUT": "0",
            # `sweep ui`'s `mlflow ui`: MLflow's job runner (GenAI scorers, trace roll-ups), which no
            # sweep uses, is 8 more processes, costly to start and busy while idle (measured in
            # docs/performance.md).
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }

    def worker_env(self) -> dict[str, str]:
        """The environment of a process that trains trials (a Ray worker, `sweep reproduce`):
        Keras on TensorFlow, quiet logs."""
        return {
            "KERAS_BACKEND": "tensorflow",
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
            "PYTHONWARNINGS": "ignore",
        }


def local_tracking_uri(runs_dir: Path) -> str:
    """The SQLite store a sweep keeps in its runs folder when no tracking server is named."""
    return f"sqlite:///{(runs_dir / 'mlflow.db').resolve()}"


def apply_environment(settings: Settings | None = None) -> Settings:
    """Give MLflow, Ray and Tune the settings' environment where the caller set none; the settings."""
    settings = settings or Settings()
    for key, value in settings.environment().items():
        os.environ.setdefault(key, value)
    return settings


def setting_errors(err: ValidationError) -> list[str]:
    """A settings class's validation error, one line per variable: its name, the rule, the value."""
    lines = []
    for e in err.errors():
        name = str(e["loc"][0]) if e["loc"] else "settings"
        var = name if name.isupper() else f"SWEEP_{name.upper()}"
        given = "" if "TOKEN" in var else f" (got {e['input']!r})"  # a secret is not echoed
        lines.append(f"{var}: {e['msg']}{given}")
    return lines
