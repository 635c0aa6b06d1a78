"""The user's code packed with a sweep: what travels, where a worker puts it, where a sweep keeps it."""

import shutil
from pathlib import Path

import pytest
import yaml

from sweep import code_bundle
from sweep.code_bundle import CODE_DIR, installed, kept_in, pack, pack_spec, ref_identity
from sweep.refs import MODELS_GROUP, RefError, load_ref
from sweep.reproducibility import trial_hash
from sweep.spec import load_spec, parse_spec


def user_folder(root: Path) -> Path:
    """A builder beside a helper module, a package it imports, and things that must stay behind."""
    folder = root / "models"
    (folder / "parts").mkdir(parents=True)
    (folder / "net.py").write_text("from parts.width import WIDTH\n\ndef build(**kw):\n    return WIDTH\n")
    (folder / "parts" / "__init__.py").write_text("")
    (folder / "parts" / "width.py").write_text("WIDTH = 12\n")
    (folder / "notes.txt").write_text("not code")
    (folder / "scratch").mkdir()  # not a package
    (folder / "scratch" / "old.py").write_text("raise SystemExit")
    (folder / ".venv").mkdir()
    (folder / ".venv" / "big.py").write_text("x = 1\n")
    return folder


def spec_with(builder: str) -> dict:
    return {"name": "code", "model": {"kind": "python", "builder": builder}}


def test_a_file_refs_folder_travels_with_its_packages_and_nothing_else(tmp_path: Path) -> None:
    folder = user_folder(tmp_path)
    bundle = pack(f"{folder}/net.py:build", "model.builder")
    assert bundle is not None
    assert [name for name, _ in bundle.files] == ["net.py", "parts/__init__.py", "parts/width.py"]
    assert (bundle.entry, bundle.function, bundle.field) == ("net.py", "build", "model.builder")
    assert pack("user_builders:build", "model.builder") is None  # a module REF: installed, not shipped


def test_a_worker_loads_the_ref_from_its_own_copy_written_once(tmp_path: Path) -> None:
    folder = user_folder(tmp_path / "driver")
    spec = parse_spec(spec_with(f"{folder}/net.py:build"))
    bundles = pack_spec(spec)
    shutil.rmtree(folder)  # the worker's node does not have the file
    worker = installed(spec, bundles, root=tmp_path / "node")
    assert worker.model.builder is not None
    assert worker.model.builder.startswith(str(tmp_path / "node"))
    assert load_ref(worker.model.builder, MODELS_GROUP, "model.builder")() == 12
    assert installed(spec, bundles, root=tmp_path / "node") == worker  # the same folder, not rewritten
    assert len(list((tmp_path / "node").iterdir())) == 1


def test_changed_code_is_another_bundle(tmp_path: Path) -> None:
    folder = user_folder(tmp_path)
    first = pack(f"{folder}/net.py:build", "model.builder")
    (folder / "parts" / "width.py").write_text("WIDTH = 13\n")
    second = pack(f"{folder}/net.py:build", "model.builder")
    assert first is not None and second is not None
    assert first.digest != second.digest


def test_a_folder_too_big_to_travel_is_a_located_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = user_folder(tmp_path)
    monkeypatch.setattr(code_bundle, "MAX_BUNDLE_BYTES", 40)
    with pytest.raises(RefError, match=r"^model.builder: the folder of net.py \(.*models\) holds more than"):
        pack(f"{folder}/net.py:build", "model.builder")
    with pytest.raises(RefError, match=r"^model.builder: file not found"):
        pack(f"{tmp_path}/gone.py:build", "model.builder")


def test_a_sweeps_folder_keeps_the_code_and_its_spec_yaml_reads_it_back(tmp_path: Path) -> None:
    folder = user_folder(tmp_path / "project")
    spec = parse_spec(spec_with(f"{folder}/net.py:build"))
    bundles = pack_spec(spec)
    sweep_dir = tmp_path / "runs" / "s1"
    data = kept_in(spec.model_dump(mode="json", exclude={"trial_count"}), bundles, sweep_dir)
    assert data["model"]["builder"] == f"{CODE_DIR}/{bundles[0].digest[:12]}/net.py:build"
    (sweep_dir / "spec.yaml").write_text(yaml.safe_dump(data))
    saved = load_spec(sweep_dir / "spec.yaml")
    assert saved.model.builder is not None
    assert load_ref(saved.model.builder, MODELS_GROUP, "model.builder")() == 12
    config = {"placement": "none", "dropout": 0.0, "optimizer": "adam", "seed": 0}
    assert trial_hash(saved, config, "fp") == trial_hash(spec, config, "fp")  # the copy hashes as the file


def test_ref_identity_keeps_file_name_and_function_only() -> None:
    assert ref_identity("/a/b/net.py:build") == "net.py:build"
    assert ref_identity("code/0123/net.py:build") == "net.py:build"
    assert ref_identity("pkg.mod:build") == "pkg.mod:build"
    assert ref_identity(None) is None
