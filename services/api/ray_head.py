"""A Ray head of the service's own, for `sweep serve` without SWEEP_RAY_ADDRESS: one command on a laptop.

It runs `services/start-head.sh` (what compose's `ray-head` runs) with token authentication on, a
token generated for it, its own temp dir and ports picked free (so it never collides with another
Ray on the machine), the Jobs API on 127.0.0.1 and `slots` sweep slots (sweep.admission). `stop()`
ends it and every process it started, found by a mark in their environment (Ray's workers leave
the head's process group).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import requests

SCRIPT = Path(__file__).resolve().parents[1] / "start-head.sh"
_MARK = "SWEEP_SERVE_RAY_HEAD"


def _free_ports(n: int) -> list[int]:
    """n distinct free ports, all held open until chosen (one at a time could repeat a port)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


class LocalRayHead:
    """`ray start --head --block` for the lifetime of the service."""

    def __init__(self, cpus: int | None = None, slots: int = 2):
        self.cpus = cpus
        self.slots = slots  # sweeps whose driver runs at once (sweep.admission)
        self.token = secrets.token_hex(32)
        # Ray's Unix sockets live under the temp dir and must stay under 108 bytes: keep it short.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="sweep-ray-"))
        ports = _free_ports(9)
        self.gcs_port, self.dashboard_port, self.client_port = ports[:3]
        self._node_ports = ports[3:]
        self.log_path = self.temp_dir / "head.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """The Jobs API."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def client_env(self) -> dict[str, str]:
        """What this process needs to talk to the head (JobSubmissionClient sends the token)."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}

    def start(self, timeout: float = 120) -> Self:
        nm, om, agent, agent_grpc, runtime_env, metrics = self._node_ports
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH")}
        env.update(
            {
                **self.client_env,
                # A job's entrypoint (`python -m sweep ...`) runs through /bin/sh with this PATH.
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "RAY_PORT": str(self.gcs_port),
                "RAY_DASHBOARD_HOST": "127.0.0.1",
                "RAY_DASHBOARD_PORT": str(self.dashboard_port),
                "RAY_CMD": f"{sys.executable} -m ray.scripts.scripts",
                "RAY_USAGE_STATS_ENABLED": "0",
                "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",  # stop at once on SIGTERM
                _MARK: str(self.temp_dir),
            }
        )
        if self.cpus:
            env["RAY_NUM_CPUS"] = str(self.cpus)
        env["SWEEP_MAX_RUNNING_SWEEPS"] = str(self.slots)
        args = [
            f"--temp-dir={self.temp_dir / 'ray'}",
            f"--ray-client-server-port={self.client_port}",
            f"--node-manager-port={nm}",
            f"--object-manager-port={om}",
            f"--dashboard-agent-listen-port={agent}",
            f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--runtime-env-agent-port={runtime_env}",
            f"--metrics-export-port={metrics}",
            "--min-worker-port=0",
            "--max-worker-port=0",
            "--disable-usage-stats",
        ]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(SCRIPT), *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.temp_dir,  # a driver's cwd lands on workers' sys.path: not the repo
            )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"the local Ray head did not start:\n{tail}")
            time.sleep(0.5)
        return self

    def _answers(self) -> bool:
        with contextlib.suppress(requests.RequestException):
            # Public with auth on: 200 once the GCS is up and the Jobs API serves.
            return requests.get(f"{self.address}/api/gcs_healthz", timeout=2).status_code == 200
        return False

    def _processes(self) -> list[int]:
        mark = f"{_MARK}={self.temp_dir}".encode()
        found = []
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                if mark in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
        return found

    def stop(self) -> None:
        """SIGTERM the head (it stops its jobs), then SIGKILL whatever it left; remove the temp dir."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=10)
            self._proc = None
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self._processes() and time.monotonic() < deadline:
            time.sleep(0.2)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
