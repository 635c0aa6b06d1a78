"""The compose topology from plain processes on this host: PostgreSQL, `mlflow server`, Ray.

Each server runs through the same `services/*.sh` script that docker-compose runs, so a test
exercises the deployment's own start-up path. Every server starts with `start()` (which returns
the server, and waits until it answers) and ends with `stop()`; both also work as context
managers. Nothing here calls `ray.init` or `ray stop`: the first would tie the pytest process to
one cluster, the second stops every Ray on the machine.
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
import sysconfig
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

import requests

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
VENV_BIN = Path(sys.executable).parent

# Set in every Ray node's environment; Ray's workers and agents inherit it (and call setsid,
# so they leave the node's process group): it is how stop() finds them all.
_CLUSTER_MARK = "SWEEP_TEST_RAY_CLUSTER"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def processes_in_group(pgid: int) -> list[str]:
    """The command lines of the processes in process group `pgid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                found.append((stat.parent / "cmdline").read_text().replace("\0", " ").strip())
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
    return found


def mlflow_job_runner(commands: list[str]) -> list[str]:
    """Those of `commands` that are MLflow's job runner (GenAI scorers, trace roll-ups), which
    start-mlflow.sh and `sweep ui` leave off."""
    return [c for c in commands if "mlflow.server.jobs" in c or "huey_consumer" in c]


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return f"(no log at {path})"


def _stop_group(proc: subprocess.Popen[bytes], timeout: float, sig: int = signal.SIGTERM) -> None:
    """Signal a process group started with start_new_session=True; SIGKILL it after timeout."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # children left behind in the group
    proc.wait(timeout=10)


class _Server:
    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class PostgresServer(_Server):
    """A PostgreSQL server on 127.0.0.1 with database `mlflow` owned by a password user.

    PostgreSQL refuses to run as root: as root, the server runs as the `postgres` system user
    from a data directory of its own under the system temp dir (pytest's 0700 temp dirs are
    closed to that user); its log still goes to `tmpdir/postgres.log`.
    """

    def __init__(self, tmpdir: Path, user: str = "sweep", password: str = "sweep", database: str = "mlflow"):
        self.user, self.password, self.database = user, password, database
        self.port = free_port()
        self.log_path = Path(tmpdir) / "postgres.log"
        self._bin = _postgres_bin()
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner: str | None = None
        if os.geteuid() == 0:
            self._owner = "postgres"
            self._base = Path(tempfile.mkdtemp(prefix="sweep-pg-"))
        else:
            self._base = Path(tmpdir) / "postgres"
            self._base.mkdir(parents=True, exist_ok=True)
        self._data, self._sock = self._base / "data", self._base / "sock"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the database, as MLflow's --backend-store-uri takes it."""
        return self.url_of(self.database)

    def url_of(self, database: str) -> str:
        return f"postgresql+psycopg2://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, database: str) -> str:
        """Another empty database owned by the user, on this server; returns its URL.

        One server, a database per MLflow store: a test's store is its own, without the seconds
        another PostgreSQL server would cost.
        """
        self._psql(f"CREATE DATABASE {database} OWNER {self.user}")
        return self.url_of(database)

    def _as_owner(self, args: list[str]) -> str:
        result = subprocess.run(
            args,
            user=self._owner,
            group=self._owner,
            extra_groups=[] if self._owner else None,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} exited {result.returncode}:\n{result.stderr}")
        return result.stdout

    def start(self, timeout: float = 300) -> Self:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if not self._data.exists():
            self._sock.mkdir(exist_ok=True)
            pwfile = self._base / "pwfile"  # initdb wants one with password auth; trust on the socket
            pwfile.write_text(secrets.token_hex(16))
            if self._owner:
                for path in (self._base, self._sock, pwfile):
                    shutil.chown(path, self._owner, self._owner)
            initdb = [
                str(self._bin / "initdb"),
                "-D",
                str(self._data),
                "-U",
                "postgres",
                f"--pwfile={pwfile}",
            ]
            self._as_owner(
                # UTF8 as the official postgres image has it: with --no-locale alone the database is
                # SQL_ASCII and MLflow's server fails (500) on any non-ASCII tag or param.
                [
                    *initdb,
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--no-locale",
                    "--encoding=UTF8",
                    "--no-sync",
                ]
            )
        server = [str(self._bin / "postgres"), "-D", str(self._data), "-k", str(self._sock)]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [*server, "-h", "127.0.0.1", "-p", str(self.port), "-c", "fsync=off"],
                user=self._owner,
                group=self._owner,
                extra_groups=[] if self._owner else None,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ready = [
            str(self._bin / "pg_isready"),
            "-q",
            "-U",
            "postgres",
            "-h",
            str(self._sock),
            "-p",
            str(self.port),
        ]
        deadline = time.monotonic() + timeout
        while subprocess.run(ready, check=False).returncode != 0:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"postgres did not start:\n{_tail(self.log_path)}")
            time.sleep(0.2)
        if not self._psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{self.user}'").strip():
            self._psql(f"CREATE ROLE {self.user} LOGIN PASSWORD '{self.password}'")
            self._psql(f"CREATE DATABASE {self.database} OWNER {self.user}")
        return self

    def _psql(self, sql: str) -> str:
        socket_args = ["-h", str(self._sock), "-p", str(self.port), "-U", "postgres", "-d", "postgres"]
        return self._as_owner([str(self._bin / "psql"), *socket_args, "-v", "ON_ERROR_STOP=1", "-tAc", sql])

    def stop(self) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, then exit); removes the data."""
        if self._proc is not None:
            _stop_group(self._proc, timeout=30, sig=signal.SIGINT)
            self._proc = None
        shutil.rmtree(self._base, ignore_errors=True)


def _postgres_bin() -> Path:
    """Debian's newest PostgreSQL: /usr/lib/postgresql/<major>/bin."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql): see .ci/run")
    return found[-1].parent


class MlflowServer(_Server):
    """`services/start-mlflow.sh` on 127.0.0.1 with the venv's MLflow.

    stop() then start() brings the server back on the same port (an outage, as a client sees it).
    """

    def __init__(self, backend_uri: str, artifacts_dir: Path, port: int | None = None):
        self.backend_uri = backend_uri
        self.artifacts_dir = Path(artifacts_dir)
        self.port = port or free_port()
        self.log_path = self.artifacts_dir.parent / f"mlflow-{self.port}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300) -> Self:
        env = {
            **os.environ,
            "MLFLOW_BACKEND_STORE_URI": self.backend_uri,
            "MLFLOW_ARTIFACTS_DESTINATION": str(self.artifacts_dir),
            "MLFLOW_HOST": "127.0.0.1",
            "MLFLOW_PORT": str(self.port),
            "MLFLOW_WORKERS": "1",
            "MLFLOW_CMD": f"{sys.executable} -m mlflow",
        }
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(SERVICES / "start-mlflow.sh")],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mlflow server did not start:\n{_tail(self.log_path)}")
            time.sleep(0.5)
        return self

    def processes(self) -> list[str]:
        """The command lines of the server's processes (start-mlflow.sh's group)."""
        return processes_in_group(self._proc.pid) if self._proc is not None else []

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self._proc is not None:
            _stop_group(self._proc, timeout=30)
            self._proc = None


class RayCluster(_Server):
    """A Ray head plus `nodes - 1` worker nodes on this host, token authentication on.

    Every port a node opens is pinned to a free one (two nodes on one host otherwise collide,
    e.g. on the dashboard agent's 52365), except the workers', which the OS picks. Ray replaces
    a loopback --node-ip-address with the host's address, so nodes report that IP; the head's
    dashboard (Jobs API) alone is bound to 127.0.0.1. Nodes are named `head`, `node1`, ...
    `env` is added to every node's environment, as compose's `environment:` is.
    """

    # A killed node is declared dead after about period x threshold: ~5 s here, not Ray's 20-55 s.
    HEALTH_CHECK: ClassVar[dict[str, str]] = {
        "RAY_health_check_initial_delay_ms": "2000",
        "RAY_health_check_period_ms": "1000",
        "RAY_health_check_timeout_ms": "1000",
        "RAY_health_check_failure_threshold": "5",
    }

    def __init__(
        self,
        tmpdir: Path,
        nodes: int = 2,
        cpus_per_node: int = 1,
        worker_cmd: str | None = None,
        env: Mapping[str, str] | None = None,
    ):
        self.tmpdir = Path(tmpdir)
        self.nodes, self.cpus_per_node, self.worker_cmd = nodes, cpus_per_node, worker_cmd
        self.token = secrets.token_hex(32)
        self.token_path = self.tmpdir / "ray_auth_token"
        # One call for every port: separate calls can hand out the same port twice (each call's
        # sockets are closed before the next opens), and Ray refuses a port two components share.
        ports = _free_ports(3 + 6 * nodes)
        self.gcs_port, self.dashboard_port, self.client_port = ports[:3]
        # Per node: node manager, object manager, dashboard agent http and grpc, runtime env
        # agent, metrics export.
        self._node_ports = [ports[3 + 6 * i : 9 + 6 * i] for i in range(nodes)]
        # Ray's Unix sockets live under the temp dir and must stay under 108 bytes: keep it short.
        self._temp_root = Path(tempfile.mkdtemp(prefix="ray-"))
        self._extra_env = dict(env or {})
        self._procs: list[subprocess.Popen[bytes]] = []
        self._starts = [0] * nodes  # a restarted node gets a temp dir of its own

    @property
    def address(self) -> str:
        """The GCS address for `ray.init(address=...)` and `ray start --address`."""
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        """The Jobs API (`JobSubmissionClient(dashboard_url)`)."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def env(self) -> dict[str, str]:
        """What a client process (driver, job client, `ray` CLI) needs besides the address.

        With it, `JobSubmissionClient(dashboard_url)` sends the token by itself.
        """
        return {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": self.token,
            "RAY_AUTH_TOKEN_PATH": str(self.token_path),
            "RAY_USAGE_STATS_ENABLED": "0",
        }

    def node_name(self, i: int) -> str:
        return "head" if i == 0 else f"node{i}"

    def _node_env(self) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        return {
            **inherited,
            # A job's entrypoint (`sweep ...`) runs through /bin/sh with the head's PATH.
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            **self.env,
            # SIGTERM makes `ray start --block` drain the node for up to 30 s first.
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
            _CLUSTER_MARK: str(self._temp_root),
            **self._extra_env,
        }

    def _node_args(self, i: int) -> list[str]:
        nm, om, agent, agent_grpc, runtime_env, metrics = self._node_ports[i]
        temp_dir = self._temp_root / (self.node_name(i) + (f"-{self._starts[i]}" if self._starts[i] else ""))
        args = [
            f"--temp-dir={temp_dir}",
            f"--node-name={self.node_name(i)}",
            f"--node-manager-port={nm}",
            f"--object-manager-port={om}",
            f"--dashboard-agent-listen-port={agent}",
            f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--runtime-env-agent-port={runtime_env}",
            f"--metrics-export-port={metrics}",
            "--min-worker-port=0",  # 0/0: each worker binds a port the OS picks
            "--max-worker-port=0",
            "--disable-usage-stats",
        ]
        if i > 0:
            args.append("--include-log-monitor=False")  # one per host: the head's
        return args

    def start(self, timeout: float = 300) -> Self:
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self.token_path.write_text(self.token)
        self.token_path.chmod(0o600)
        head_env = {
            **self._node_env(),
            **self.HEALTH_CHECK,
            "RAY_PORT": str(self.gcs_port),
            "RAY_DASHBOARD_HOST": "127.0.0.1",
            "RAY_DASHBOARD_PORT": str(self.dashboard_port),
            "RAY_NUM_CPUS": str(self.cpus_per_node),
            "RAY_CMD": f"{sys.executable} -m ray.scripts.scripts",
        }
        head_args = [*self._node_args(0), f"--ray-client-server-port={self.client_port}"]
        try:
            self._procs.append(self._launch(0, "start-head.sh", head_env, head_args))
            self._wait_dashboard(timeout)
            self._procs += [self._launch_worker(i) for i in range(1, self.nodes)]
            self.wait_nodes(self.nodes, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _launch_worker(self, i: int) -> subprocess.Popen[bytes]:
        node_env = self._node_env()
        if self.worker_cmd:  # a Python of its own: a PYTHONPATH to a checkout would hand it ./sweep
            node_env.pop("PYTHONPATH", None)
        worker_env = {
            **node_env,
            "RAY_HEAD_ADDRESS": self.address,
            "RAY_NUM_CPUS": str(self.cpus_per_node),
            "RAY_CMD": self.worker_cmd or f"{sys.executable} -m ray.scripts.scripts",
        }
        return self._launch(i, "start-worker.sh", worker_env, self._node_args(i))

    def _launch(self, i: int, script: str, env: dict[str, str], args: list[str]) -> subprocess.Popen[bytes]:
        with self.log_path(i).open("ab") as log:
            return subprocess.Popen(
                [str(SERVICES / script), *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.tmpdir,
            )

    def restart_node(self, i: int, timeout: float = 300) -> None:
        """Start node i (>= 1) again under its name, after kill_node(i) or a crash of its own.

        What is left of the old node is killed; the new one gets fresh ports and temp dir (the old
        node's may still be held, and its sockets lie in the old session's folder).
        """
        if i < 1:
            raise ValueError(
                f"restart_node: node 0 is the head; extra nodes are 1..{self.nodes - 1} (got {i})"
            )
        node_dir = str(self._temp_root / self.node_name(i))  # and node1-1, node1-2, ... of earlier restarts
        _stop_group(self._procs[i], timeout=20)
        for pid, argv in self._cluster_processes():
            if any(f"{node_dir}/" in arg or f"{node_dir}-" in arg or arg.endswith(node_dir) for arg in argv):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._node_ports[i] = _free_ports(6)
        self._starts[i] += 1
        self._procs[i] = self._launch_worker(i)
        self.wait_nodes(self.nodes, timeout)

    def heal(self, timeout: float = 300) -> Self:
        """Restart every node that is not alive (a test killed it): the cluster as start() left it."""
        alive = self.node_ids()
        for i in range(1, self.nodes):
            if self.node_name(i) not in alive:
                self.restart_node(i, timeout)
        return self

    def log_path(self, i: int) -> Path:
        """The output of node i's `ray start` (Ray's own logs are under its temp dir)."""
        return self.tmpdir / f"ray-{self.node_name(i)}.log"

    def _wait_dashboard(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(requests.RequestException):
                # Public with auth on (unlike /api/version): it answers once GCS is up.
                if requests.get(f"{self.dashboard_url}/api/gcs_healthz", timeout=2).status_code == 200:
                    return
            if self._procs[0].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray head did not start:\n{_tail(self.log_path(0))}")
            time.sleep(0.5)

    def _nodes(self) -> list[dict[str, object]]:
        """Every node the GCS knows, through the dashboard's state API (no ray.init needed)."""
        response = requests.get(
            f"{self.dashboard_url}/api/v0/nodes",
            params={"limit": "1000", "detail": "true"},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        response.raise_for_status()
        return list(response.json()["data"]["result"]["result"])

    def node_ids(self) -> dict[str, str]:
        """Alive nodes: node name (`head`, `node1`, ...) -> Ray node id."""
        return {str(n["node_name"]): str(n["node_id"]) for n in self._nodes() if n["state"] == "ALIVE"}

    def wait_nodes(self, n: int, timeout: float = 60) -> dict[str, str]:
        """Wait until exactly n nodes are alive; returns node_ids()."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                alive = self.node_ids()
            except requests.RequestException:
                alive = {}
            if len(alive) == n:
                return alive
            if time.monotonic() > deadline:
                logs = "\n".join(
                    f"--- {self.node_name(i)}\n{_tail(self.log_path(i), 1500)}" for i in range(self.nodes)
                )
                raise TimeoutError(f"{len(alive)} nodes alive after {timeout} s, wanted {n}: {alive}\n{logs}")
            time.sleep(0.5)

    @property
    def temp_root(self) -> Path:
        """Where the nodes' Ray temp dirs (sessions, logs, drivers' Tune staging dirs) live."""
        return self._temp_root

    def kill_node(self, i: int) -> None:
        """SIGKILL node i's raylet, as a crashed machine would look to the head (i >= 1)."""
        if i < 1:
            raise ValueError(f"kill_node: node 0 is the head; extra nodes are 1..{self.nodes - 1} (got {i})")
        flag = f"--node_manager_port={self._node_ports[i][0]}"
        raylets = [pid for pid, cmdline in self._cluster_processes() if flag in cmdline]
        if not raylets:
            raise RuntimeError(f"kill_node: no raylet with {flag} is running")
        for pid in raylets:
            os.kill(pid, signal.SIGKILL)

    def _cluster_processes(self) -> list[tuple[int, list[str]]]:
        """(pid, argv) of every process of this cluster, by the mark in its environment."""
        mark = f"{_CLUSTER_MARK}={self._temp_root}".encode()
        found = []
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):  # gone, or not ours to read
                if mark in (proc / "environ").read_bytes().split(b"\0"):
                    argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
                    found.append((int(proc.name), argv))
        return found

    def stop(self) -> None:
        """SIGTERM each node's `ray start --block`, workers first; SIGKILL whatever is left."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 20
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        self._procs = []
        for pid, _ in self._cluster_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self._cluster_processes() and time.monotonic() < deadline:
            time.sleep(0.2)
        shutil.rmtree(self._temp_root, ignore_errors=True)

    def run_client(self, code: str, timeout: float = 120, **env: str) -> str:
        """Run Python `code` in a fresh process with this cluster's client env; returns its stdout.

        The code finds the address in RAY_ADDRESS. It runs in tmpdir: Ray adds the driver's cwd
        to every worker's sys.path, which from the repo root would put ./sweep on it.
        """
        result = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, **self.env, "RAY_ADDRESS": self.address, **env},
            cwd=self.tmpdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"client exited {result.returncode}:\n{result.stderr[-4000:]}")
        return result.stdout


def cluster_without_sweep(tmpdir: Path) -> RayCluster:
    """A head on .venv's Python and node1 on a Python with every dependency but not the sweep
    package, 1 CPU each (not started): a job must bring the package, as on a real cluster."""
    python = python_without_sweep(Path(tmpdir))
    return RayCluster(tmpdir, nodes=2, cpus_per_node=1, worker_cmd=f"{python} -m ray.scripts.scripts")


def python_without_sweep(tmpdir: Path) -> Path:
    """A Python that imports everything installed in .venv except the `sweep` package.

    A new venv whose one .pth puts .venv's site-packages on sys.path and runs its .pth files,
    except sweep's editable-install hook. (Run from the repo root, `python -c` still finds
    ./sweep through the '' entry on sys.path, as any Python would.)
    """
    venv = Path(tmpdir) / "venv-without-sweep"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # type: ignore[attr-defined]
    site_packages = sysconfig.get_paths()["purelib"]
    new_site = next((venv / "lib").glob("python*/site-packages"))
    (new_site / "_deps_without_sweep.py").write_text(
        "import os, site, sys\n"
        f"_DIR = {site_packages!r}\n"
        "sys.path.append(_DIR)\n"
        "for _name in sorted(os.listdir(_DIR)):\n"
        "    if _name.endswith('.pth') and not (_name.startswith('__editable__') and 'sweep' in _name):\n"
        "        site.addpackage(_DIR, _name, None)\n"
    )
    (new_site / "_deps_without_sweep.pth").write_text("import _deps_without_sweep\n")
    return venv / "bin" / "python"


def wait_for(condition: Any, timeout: float, what: str, every: float = 1.0) -> Any:
    """`condition()`'s first truthy value, polled every `every` s; TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with_value = condition()
        if with_value:
            return with_value
        time.sleep(every)
    raise TimeoutError(f"{what} within {timeout} s")


class Driver:
    """`sweep run` in its own process group, its output in a file (a pipe nobody reads while the
    test waits fills up and blocks the driver, which then stops Tune's loop: a flaky test)."""

    def __init__(self, args: list[str], *, env: Mapping[str, str], cwd: Path) -> None:
        self.log = cwd / "driver.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sweep", "run", *args],
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, condition: Any, timeout: float, what: str, every: float = 1.0) -> Any:
        """`wait_for` that fails at once, with the driver's output, if the driver has exited."""

        def alive_and(condition_: Any = condition) -> Any:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"driver exited {self.process.returncode} before {what}:\n{self.output[-3000:]}"
                )
            return condition_()

        try:
            return wait_for(alive_and, timeout, what, every)
        except TimeoutError as err:
            raise TimeoutError(f"{err}; driver output:\n{self.output[-3000:]}") from None

    def finish(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


__all__ = [
    "Driver",
    "MlflowServer",
    "PostgresServer",
    "RayCluster",
    "cluster_without_sweep",
    "free_port",
    "python_without_sweep",
    "wait_for",
]
