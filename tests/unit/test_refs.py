"""sweep.refs: the three REF forms, parsed and loaded, and every way loading fails, located."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sweep.refs import MODELS_GROUP, RefError, load_ref, parse_ref, plugins, with_base


def test_the_three_forms_parse_apart() -> None:
    assert parse_ref("models/net.py:build").kind == "file"
    assert parse_ref("net.py:build").path == Path("net.py")
    module = parse_ref("mypkg.models:build_resnet")
    assert (module.kind, module.target, module.function) == ("module", "mypkg.models", "build_resnet")
    plugin = parse_ref("resnet-small")
    assert (plugin.kind, plugin.function) == ("plugin", None)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("", "must be"),
        ("net.py:", "not a function name"),
        ("net.py:2build", "not a function name"),
        ("models/net.txt:build", "names a .py file"),
        ("my-pkg.models:build", "neither a .py file nor a dotted module"),
        ("Bad Name", "neither"),
        ("x" * 2000, "at most"),
    ],
)
def test_a_malformed_ref_names_the_rule(text: str, rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        parse_ref(text)


def test_a_relative_file_ref_is_taken_from_the_specs_folder(tmp_path: Path) -> None:
    assert with_base("models/net.py:build", tmp_path) == f"{tmp_path / 'models/net.py'}:build"
    assert with_base("/abs/net.py:build", tmp_path) == "/abs/net.py:build"
    assert with_base("pkg.mod:build", tmp_path) == "pkg.mod:build"
    assert with_base("plugin-name", tmp_path) == "plugin-name"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_a_file_ref_loads_its_function_and_the_file_imports_its_neighbours(tmp_path: Path) -> None:
    _write(tmp_path / "shared_widths_xyz.py", "WIDTHS = (8, 4)\n")
    body = "from shared_widths_xyz import WIDTHS\ndef build(**kw):\n    return WIDTHS\n"
    net = _write(tmp_path / "net.py", body)
    assert load_ref(f"{net}:build", MODELS_GROUP, "model.builder")() == (8, 4)


def test_two_files_of_one_name_do_not_collide(tmp_path: Path) -> None:
    a = _write(tmp_path / "a" / "net.py", "def build():\n    return 'a'\n")
    b = _write(tmp_path / "b" / "net.py", "def build():\n    return 'b'\n")
    assert load_ref(f"{a}:build", MODELS_GROUP, "f")() == "a"
    assert load_ref(f"{b}:build", MODELS_GROUP, "f")() == "b"


def test_a_module_ref_loads_an_importable_function() -> None:
    assert load_ref("json:dumps", MODELS_GROUP, "model.builder")([1]) == "[1]"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: f"{d}/missing.py:build", r"model.builder: file not found \(.*missing.py\)"),
        (lambda d: f"{d}:build.py:build", "model.builder"),
        (lambda d: "no_such_module_here.sub:build", "no module named 'no_such_module_here.sub'"),
        (lambda d: "json:no_such_function", "module json has no function 'no_such_function'"),
        (lambda d: "json:__doc__", "is a str, not a function"),
        (lambda d: "no-such-plugin", f"no plugin 'no-such-plugin' in entry-point group {MODELS_GROUP}"),
        (lambda d: "net.py:", "model.builder: .*not a function name"),
    ],
)
def test_every_failure_is_a_located_ref_error(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RefError, match=message):
        load_ref(make(tmp_path), MODELS_GROUP, "model.builder")


@pytest.mark.parametrize("body", ["raise RuntimeError('boom')", "import sys\nsys.exit(3)", "def broken(:\n"])
def test_a_file_that_fails_to_import_is_a_ref_error_not_a_crash(tmp_path: Path, body: str) -> None:
    net = _write(tmp_path / "net.py", body + "\n")
    with pytest.raises(RefError, match=r"model.builder: importing .*net.py raised"):
        load_ref(f"{net}:build", MODELS_GROUP, "model.builder")


def test_plugins_lists_the_group_as_name_and_target() -> None:
    assert isinstance(plugins(MODELS_GROUP), dict)
