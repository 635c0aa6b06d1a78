"""docker-compose.yml: valid Compose, and consistent with the scripts and the image it runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
COMPOSE = ROOT / "docker-compose.yml"
RAY_NODES = ("ray-head", "ray-worker")
# Set for the sweep code a Ray job runs (and MLflow's client), not for the start scripts.
READ_BY_JOBS = {"MLFLOW_TRACKING_URI", "SWEEP_RUNS_DIR"}


def read_by_api() -> set[str]:
    """What `sweep serve` reads itself: its settings, SWEEP_<FIELD>."""
    from services.api.settings import Settings

    return {f"SWEEP_{name.upper()}" for name in Settings.model_fields}


# Compose interpolation: $$ (a literal $), ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error},
# ${VAR?error} and $VAR.
_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)"
)


def interpolate(text: str, env: dict[str, str]) -> str:
    def substitute(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("name") or m.group("bare")
        value, op = env.get(name), m.group("op") or ""
        if op.endswith("?") and (value is None or (op == ":?" and not value)):
            raise KeyError(f"{name}: {m.group('arg')}")
        if op.endswith("-") and (value is None or (op == ":-" and not value)):
            return str(m.group("arg"))
        return value or ""

    return _INTERPOLATION.sub(substitute, text)


def interpolated_names(text: str) -> set[str]:
    return {m.group("name") or m.group("bare") for m in _INTERPOLATION.finditer(text) if m.group(0) != "$$"}


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.lstrip().startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as `docker compose` sees it with .env.example (secrets filled in)."""
    env = {name: value or "example-secret" for name, value in env_example().items()}
    return dict(yaml.safe_load(interpolate(COMPOSE.read_text(), env)))


def script_of(service: dict[str, Any]) -> Path:
    command = service["command"]
    words = command.split() if isinstance(command, str) else command
    return ROOT / words[0]


def script_reads(script: Path) -> set[str]:
    code = "\n".join(line for line in script.read_text().splitlines() if not line.lstrip().startswith("#"))
    return set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", code))


def script_default(script: Path, name: str) -> str:
    found = re.search(rf"\$\{{{name}:-([^}}]*)\}}", script.read_text())
    assert found, f"{script.name} has no default for {name}"
    return found.group(1)


def scripted_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if "command" in s}


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads((SERVICES / "compose-spec.schema.json").read_text())
    assert "json-schema.org/draft-07/schema" in schema["$schema"]
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []
    assert "version" not in compose  # obsolete in the Compose Specification


def test_env_example_names_every_variable_the_compose_file_interpolates() -> None:
    missing = interpolated_names(COMPOSE.read_text()) - set(env_example())
    assert missing == set()


def test_every_command_is_an_executable_bash_script_in_services(compose: dict[str, Any]) -> None:
    for name, service in scripted_services(compose).items():
        script = script_of(service)
        assert script.parent == SERVICES, f"{name}: {script}"
        assert script.is_file() and os.access(script, os.X_OK), f"{name}: {script} is not executable"
        assert "set -euo pipefail" in script.read_text(), script.name
        subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.parametrize(
    ("service", "port_variable", "port"),
    [
        ("mlflow", "MLFLOW_PORT", "5000"),
        ("ray-head", "RAY_DASHBOARD_PORT", "8265"),
        ("api", "SWEEP_PORT", "8000"),
    ],
)
def test_published_port_is_the_one_the_script_listens_on(
    compose: dict[str, Any], service: str, port_variable: str, port: str
) -> None:
    config = compose["services"][service]
    script = script_of(config)
    assert script_default(script, port_variable) == port
    listens = str(config.get("environment", {}).get(port_variable, port))
    container_ports = [str(p).rsplit(":", 1)[-1] for p in config["ports"]]
    assert listens in container_ports
    assert f":{listens}/" in " ".join(config["healthcheck"]["test"])


def test_services_set_only_variables_their_script_reads(compose: dict[str, Any]) -> None:
    for name, service in scripted_services(compose).items():
        reads = script_reads(script_of(service))
        unread = set(service.get("environment", {})) - reads - READ_BY_JOBS
        if name == "api":
            unread -= read_by_api()
        assert unread == set(), f"{name} sets variables {script_of(service).name} does not read"
        required = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):\?", script_of(service).read_text()))
        assert required <= set(service.get("environment", {})), f"{name} misses required variables"


def test_every_ray_node_has_the_token_and_finds_the_head(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in RAY_NODES:
        assert services[name]["environment"]["RAY_AUTH_TOKEN"], name
    head_port = services["ray-head"]["environment"].get("RAY_PORT", "6379")
    assert services["ray-worker"]["environment"]["RAY_HEAD_ADDRESS"] == f"ray-head:{head_port}"
    assert head_port in map(str, services["ray-head"].get("expose", []))


def test_ray_worker_can_be_scaled(compose: dict[str, Any]) -> None:
    worker = compose["services"]["ray-worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


def test_every_ray_node_mounts_the_same_runs_volume(compose: dict[str, Any]) -> None:
    sources = set()
    for name in RAY_NODES:
        service = compose["services"][name]
        runs_dir = service["environment"]["SWEEP_RUNS_DIR"]
        mounts = [str(v).split(":") for v in service["volumes"]]
        sources |= {source for source, target, *_ in mounts if target == runs_dir}
        assert any(target == runs_dir for _, target, *_ in mounts), f"{name} does not mount {runs_dir}"
    assert len(sources) == 1
    assert sources <= set(compose["volumes"])  # a named volume, not a host path


def test_mlflow_admits_the_host_every_client_uses(compose: dict[str, Any]) -> None:
    from mlflow.server.security_utils import is_allowed_host_header

    services = compose["services"]
    allowed = services["mlflow"]["environment"]["MLFLOW_ALLOWED_HOSTS"].split(",")
    uris = [
        s["environment"][name]
        for s in services.values()
        for name in ("MLFLOW_TRACKING_URI", "SWEEP_TRACKING_URI")
        if name in s.get("environment", {})
    ]
    assert uris
    hosts = {"mlflow:5000"} | {urlsplit(uri).netloc for uri in uris}
    assert {h for h in hosts if not is_allowed_host_header(allowed, h)} == set()


def test_services_wait_only_on_services_with_a_health_check(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits on {dependency}"


def test_image_is_the_ray_and_python_the_lock_pins() -> None:
    lock = dict(line.split("==") for line in (ROOT / "requirements.lock").read_text().split())
    requires_python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    python = re.search(r">=\s*3\.(\d+)", requires_python)
    assert python
    dockerfile = (SERVICES / "Dockerfile").read_text()
    assert re.findall(r"^FROM\s+(\S+)", dockerfile, re.M) == [
        f"rayproject/ray:{lock['ray']}-py3{python[1]}-cpu"
    ]


def test_image_copies_files_that_exist_and_are_not_dockerignored() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    for copy in re.findall(r"^COPY\s+(?:--\S+\s+)*(.+)$", (SERVICES / "Dockerfile").read_text(), re.M):
        for source in copy.split()[:-1]:
            assert (ROOT / source).exists(), source
            assert source.rstrip("/") not in ignored, source


def test_api_uses_the_cluster_and_tracking_server_the_nodes_use(compose: dict[str, Any]) -> None:
    services = compose["services"]
    api, head = services["api"]["environment"], services["ray-head"]["environment"]
    assert api["SWEEP_RAY_ADDRESS"] == f"http://ray-head:{head['RAY_DASHBOARD_PORT']}"
    assert api["SWEEP_TRACKING_URI"] == head["MLFLOW_TRACKING_URI"]
    assert api["SWEEP_RUNS_DIR"] == head["SWEEP_RUNS_DIR"]  # passed to each job as --runs-dir
    assert api["RAY_AUTH_TOKEN"] == head["RAY_AUTH_TOKEN"]
    waits = services["api"]["depends_on"]
    assert {waits[s]["condition"] for s in ("ray-head", "mlflow")} == {"service_healthy"}


def test_api_binds_every_interface_only_with_a_token(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    assert script_default(script_of(api), "SWEEP_HOST") == "0.0.0.0"
    assert api["environment"]["SWEEP_API_TOKEN"]
    assert "${SWEEP_API_TOKEN:?" in COMPOSE.read_text()  # compose refuses to start without one
