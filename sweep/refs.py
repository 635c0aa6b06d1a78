"""Code a spec names: a model builder or data loader, given as a REF.

Three forms:

- `path/to/file.py:function`: a file, relative to the spec's folder (as `dataset.path` is);
- `package.module:function`: anything importable;
- `name`: a plugin an installed package registers under the entry-point group `sweep.models`
  (builders) or `sweep.datasets` (loaders). Only this form is accepted over REST, so no code from a
  request body is ever imported.

Parsing is pure; `load_ref` imports, and turns every way that can fail into a `RefError` naming
the field, what was given and what went wrong.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal

MODELS_GROUP = "sweep.models"
DATASETS_GROUP = "sweep.datasets"

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*$")
_FUNCTION = re.compile(rf"^{_IDENTIFIER}$")
PLUGIN_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_REF_LENGTH = 1000

RefKind = Literal["file", "module", "plugin"]


class RefError(ValueError):
    """A REF that cannot be loaded: the message names the field, the REF and the reason."""


@dataclass(frozen=True)
class CodeRef:
    """A parsed REF: `target` is the file path, the module name or the plugin name."""

    text: str
    kind: RefKind
    target: str
    function: str | None = None

    @property
    def path(self) -> Path | None:
        """The file of a file REF."""
        return Path(self.target) if self.kind == "file" else None


def parse_ref(text: str) -> CodeRef:
    """The REF `text`, or ValueError naming the rule it breaks (for the spec's validators)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("must be 'file.py:function', 'package.module:function' or a plugin name")
    if len(text) > MAX_REF_LENGTH or not text.isprintable():
        raise ValueError(f"must be at most {MAX_REF_LENGTH} printable characters")
    if ":" not in text:
        if not PLUGIN_NAME.match(text):
            raise ValueError(
                f"{text!r} is neither 'file.py:function', 'package.module:function' nor a plugin "
                "name (lowercase letters, digits, '_', '.', '-')"
            )
        return CodeRef(text, "plugin", text)
    target, _, function = text.rpartition(":")
    if not _FUNCTION.match(function):
        raise ValueError(f"{text!r}: {function!r} after the ':' is not a function name")
    if target.endswith(".py") or "/" in target or "\\" in target:
        if not target.endswith(".py"):
            raise ValueError(f"{text!r}: a file REF names a .py file (got {target!r})")
        return CodeRef(text, "file", target, function)
    if not _MODULE.match(target):
        raise ValueError(f"{text!r}: {target!r} is neither a .py file nor a dotted module name")
    return CodeRef(text, "module", target, function)


def with_base(text: str, base: Path) -> str:
    """`text` with a relative file REF made relative to `base` (the spec's folder)."""
    try:
        ref = parse_ref(text)
    except ValueError:
        return text  # the spec's validator says what is wrong
    if ref.kind != "file" or Path(ref.target).expanduser().is_absolute():
        return text
    return f"{base / Path(ref.target).expanduser()}:{ref.function}"


def plugins(group: str) -> dict[str, str]:
    """The plugins installed packages register in `group`: name -> 'module:function'."""
    return {ep.name: ep.value for ep in entry_points(group=group)}


def load_ref(text: str, group: str, field: str) -> Callable[..., Any]:
    """The function `text` names (a plugin name is looked up in `group`), or RefError."""
    try:
        ref = parse_ref(text)
    except ValueError as err:
        raise RefError(f"{field}: {err}") from None
    if ref.kind == "plugin":
        found = [ep for ep in entry_points(group=group) if ep.name == ref.target]
        if not found:
            known = ", ".join(sorted(plugins(group))) or "none are installed"
            raise RefError(f"{field}: no plugin {ref.target!r} in entry-point group {group} ({known})")
        loader: Callable[[], Any] = found[0].load
        where = f"plugin {ref.target!r} ({found[0].value})"
    elif ref.kind == "module":
        loader = lambda: _import_module(ref)  # noqa: E731
        where = f"module {ref.target}"
    else:
        loader = lambda: _import_file(ref)  # noqa: E731
        where = str(ref.target)
    try:
        loaded = loader()
    except RefError as err:
        raise RefError(f"{field}: {err}") from None
    except BaseException as err:  # a user's module may raise anything, SystemExit included
        if isinstance(err, KeyboardInterrupt):
            raise
        raise RefError(f"{field}: importing {where} raised {type(err).__name__}: {err}") from None
    function = loaded if ref.kind == "plugin" else getattr(loaded, ref.function or "", None)
    if function is None:
        names = sorted(n for n in dir(loaded) if not n.startswith("_") and callable(getattr(loaded, n)))
        listed = ", ".join(names[:20]) or "none"
        raise RefError(f"{field}: {where} has no function {ref.function!r} (its functions: {listed})")
    if not callable(function):
        raise RefError(f"{field}: {ref.text} is a {type(function).__name__}, not a function")
    return function  # type: ignore[no-any-return]


def _import_module(ref: CodeRef) -> Any:
    try:
        return importlib.import_module(ref.target)
    except ModuleNotFoundError as err:
        if err.name and ref.target.startswith(err.name):
            raise RefError(f"no module named {ref.target!r} can be imported (is it installed?)") from None
        raise


def _import_file(ref: CodeRef) -> Any:
    path = Path(ref.target).expanduser().resolve()
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "file not found"
        raise RefError(f"{what} ({path})")
    # A name of its own per file, so two builders called `model.py` never collide; its folder goes
    # on sys.path so the file can import its neighbours, as a script run from there could.
    name = f"sweep_user_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"
    if name in sys.modules:
        return sys.modules[name]
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.append(folder)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RefError(f"cannot be imported as Python ({path})")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
