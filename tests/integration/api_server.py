"""`sweep serve` as a process for the integration tests, and the calls they make on it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Self

import httpx
import numpy as np
from cluster import RayCluster, free_port, wait_for

START_API = Path(__file__).resolve().parents[2] / "services" / "start-api.sh"
TOKEN = "integration-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class ApiServer:
    """`sweep serve` in a subprocess (cwd outside the repo: a driver's cwd lands on workers' sys.path).

    With `script`, through services/start-api.sh, as the compose service runs it.
    """

    def __init__(self, tmpdir: Path, env: dict[str, str], script: bool = False):
        self.tmpdir = Path(tmpdir)
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self.env = env
        self.script = script
        self.port = free_port()
        self.log_path = self.tmpdir / "serve.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180) -> Self:
        command = [sys.executable, "-m", "sweep", "serve", "--port", str(self.port)]
        env = self.env
        if self.script:
            command = [str(START_API)]
            env = {**env, "SWEEP_CMD": f"{sys.executable} -m sweep", "SWEEP_HOST": "127.0.0.1"}
            env["SWEEP_PORT"] = str(self.port)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                command,
                env=env,
                cwd=self.tmpdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return self
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sweep serve did not start:\n{self.log()}")
            time.sleep(0.5)

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM, as a process manager stops it; returns the exit code."""
        if self._proc is None:
            return None
        proc, self._proc = self._proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def client(self, timeout: float = 60, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={**AUTH, **headers}, timeout=timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    rows = ["f0,f1,f2,f3,y"] + [",".join(f"{v:.4f}" for v in r) + f",{t}" for r, t in zip(x, y, strict=True)]
    path = folder / "train.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def status(api: httpx.Client, sweep_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/sweeps/{sweep_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def until_ended(api: httpx.Client, sweep_id: str, timeout: float = 240) -> dict[str, Any]:
    return wait_for(  # type: ignore[no-any-return]
        lambda: (s := status(api, sweep_id))["status"] in ("SUCCEEDED", "FAILED", "CANCELLED") and s,
        timeout,
        f"sweep {sweep_id} ended",
    )


def serve_env(cluster: RayCluster, tracking_url: str, data_root: Path, **extra: str) -> dict[str, str]:
    """`sweep serve`'s environment for a test cluster: this process's, less any SWEEP_* or
    RAY_ADDRESS of its own, with the cluster's token, its Jobs API, the tracking server and
    the data root; `extra` adds or overrides settings."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("SWEEP_", "RAY_ADDRESS"))}
    return {
        **inherited,
        **cluster.env,
        "SWEEP_RAY_ADDRESS": cluster.dashboard_url,
        "SWEEP_TRACKING_URI": tracking_url,
        "SWEEP_API_TOKEN": TOKEN,
        "SWEEP_DATA_ROOT": str(data_root),
        **extra,
    }
