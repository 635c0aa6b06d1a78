"""The service's settings: the library's and its own, read from SWEEP_* variables once at start."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, SecretStr

from sweep import settings as library


class Settings(library.Settings):
    """Everything `sweep serve` can be told, each as SWEEP_<NAME>; runs_dir is passed to every job
    as --runs-dir (a path the cluster's nodes see)."""

    # The cluster's Jobs API (http://HEAD:8265); unset: `sweep serve` starts a local head.
    ray_address: str | None = None
    # CPUs of the local head (unset: every core).
    ray_cpus: int | None = Field(default=None, ge=1)
    # MLflow, for the service and every job it submits (--tracking-uri); unset: MLFLOW_TRACKING_URI,
    # else (local head only) the store in runs_dir.
    tracking_uri: str | None = None
    # The base URL people open MLflow's UI at, when it differs from tracking_uri (compose: localhost).
    mlflow_ui_url: str | None = None
    # With it, every /v1 call needs `Authorization: Bearer <token>`; required off loopback.
    api_token: SecretStr | None = None
    # A spec's dataset.path must resolve inside this folder; unset: specs with files are refused.
    data_root: Path | None = None
    max_trials: int = Field(default=1000, ge=1)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # A body not in after this long is refused (408): a client trickling bytes holds no worker.
    body_timeout_s: float = Field(default=10.0, gt=0, le=600)
    # How often /events reads MLflow.
    events_poll_s: float = Field(default=2.0, gt=0)
    # How long GET /v1/sweeps/{id} may answer from the last read of that sweep (0: read each time).
    status_cache_s: float = Field(default=1.0, ge=0, le=60)
    # POSTs that stage a sweep (MLflow writes, a Ray job upload) at once; the rest wait their turn
    # (docs/api.md#queue: 32 at once exhausted MLflow's connection pool of 15 and got 503s).
    max_concurrent_submits: int = Field(default=4, ge=1, le=64)
    # How long a POST waits for its turn before a 503 with Retry-After.
    submit_wait_s: float = Field(default=120.0, gt=0, le=3600)

    @property
    def tracking(self) -> str | None:
        """SWEEP_TRACKING_URI, else MLFLOW_TRACKING_URI."""
        return self.named_tracking_uri(self.tracking_uri)

    @property
    def job_runs_dir(self) -> str | None:
        """What every job is told as --runs-dir (None: the cluster's own)."""
        return str(self.runs_dir) if self.runs_dir else None

    @property
    def ui_url(self) -> str | None:
        """Where links to MLflow's UI point: mlflow_ui_url, else an http(s) tracking URI."""
        if self.mlflow_ui_url:
            return self.mlflow_ui_url
        uri = self.tracking
        return uri if uri and uri.startswith(("http://", "https://")) else None

    def environment(self) -> dict[str, str]:
        """The library's, but a request fails within seconds: a client waits on each one."""
        return {**super().environment(), "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 or ::1; a name that is not `localhost` counts as public."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
