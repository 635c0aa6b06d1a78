"""Code a posted spec may name: only plugins installed packages register (entry points), listed at
GET /v1/plugins; a file path or module from a request body is refused and never imported."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from fake_sweeps import FakeSweeps
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.api.settings import Settings

PLUGIN_MODULE = "sweep_test_plugins_api"


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package installed the way pip installs one: a module and a dist-info with entry points.
    Importing the module leaves a marker file, so a test sees whether anything imported it."""
    marker = tmp_path / "imported"
    (tmp_path / f"{PLUGIN_MODULE}.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
        "def build(**kw):\n    raise AssertionError('the service must not build models')\n"
        "def load(**kw):\n    raise AssertionError('the service must not load data')\n"
    )
    info = tmp_path / "sweep_test_plugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sweep-test-plugins\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[sweep.models]\nsmall-resnet = {PLUGIN_MODULE}:build\n\n"
        f"[sweep.datasets]\nmy-images = {PLUGIN_MODULE}:load\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, PLUGIN_MODULE, raising=False)
    return marker


@pytest.fixture
def api() -> TestClient:
    settings = Settings(ray_address="http://ray", tracking_uri="http://mlflow:5000")
    return TestClient(create_app(settings, sweeps=FakeSweeps()), raise_server_exceptions=False)


def spec(model: dict[str, Any] | None = None, dataset: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": "plugins",
        "model": model or {"kind": "mlp"},
        "dataset": dataset or {"source": "iris"},
        "search": {"placement": ["none", "before_activation"], "dropout": [0.0], "seeds": 2},
        "training": {"epochs": 1},
    }


def errors_of(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    found: dict[str, str] = {}
    for error in response.json()["errors"]:
        found[error["loc"]] = found.get(error["loc"], "") + error["msg"] + "\n"
    return found


def test_get_plugins_lists_what_installed_packages_register(api: TestClient, installed: Path) -> None:
    body = api.get("/v1/plugins").json()
    assert {"name": "small-resnet", "target": f"{PLUGIN_MODULE}:build"} in body["models"]
    assert {"name": "my-images", "target": f"{PLUGIN_MODULE}:load"} in body["datasets"]
    assert not installed.exists()  # listed from the metadata, never imported


@pytest.mark.parametrize(
    ("section", "field", "ref", "kind"),
    [
        ("model", "builder", "models/net.py:build", "file"),
        ("model", "builder", "/etc/passwd.py:build", "file"),
        ("model", "builder", f"{PLUGIN_MODULE}:build", "module"),
        ("model", "builder", "os:system", "module"),
        ("dataset", "loader", "loaders/read.py:load", "file"),
        ("dataset", "loader", f"{PLUGIN_MODULE}:load", "module"),
    ],
)
def test_a_file_or_module_ref_is_refused_naming_the_rule(
    api: TestClient, installed: Path, section: str, field: str, ref: str, kind: str
) -> None:
    part = {"kind": "python", "builder": ref} if section == "model" else {"source": "python", "loader": ref}
    body = spec(**{section: part})
    errors = errors_of(api.post("/v1/sweeps", json=body))
    message = errors[f"{section}.{field}"]
    assert f"only a plugin name registered in entry-point group sweep.{section}s" in message
    assert f"not a {kind}" in message
    assert ("small-resnet" if section == "model" else "my-images") in message
    assert not installed.exists()  # refused before anything was imported


def test_an_unregistered_plugin_name_is_refused_with_the_registered_ones(
    api: TestClient, installed: Path
) -> None:
    errors = errors_of(api.post("/v1/sweeps", json=spec({"kind": "python", "builder": "no-such-net"})))
    assert "no plugin 'no-such-net' is registered in sweep.models (small-resnet)" in errors["model.builder"]


def test_a_malformed_ref_is_refused_with_its_rule(api: TestClient, installed: Path) -> None:
    errors = errors_of(api.post("/v1/sweeps", json=spec({"kind": "python", "builder": "net.py:"})))
    assert "not a function name" in errors["model.builder"]
