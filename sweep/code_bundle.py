"""The user's code a spec names by file (`model.builder`, `dataset.loader`), packed to travel with
the sweep.

The driver packs the folder of each file REF (its .py files, and the packages under it: folders
with an `__init__.py`) into a `CodeBundle`, bounded in size. The bundle goes to every trial with
its payload, and a worker writes it once into a temporary folder named by its hash and loads the
REF from there: a trial on a node that lacks the file (a cluster's second node, a Ray job's
workers) runs the code the driver checked, whichever command started the sweep. A sweep's folder
and a submitted job's working dir keep a copy under `code/`, so `sweep resume`, `sweep reproduce`
and the job's own driver find it there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep.refs import RefError, parse_ref
from sweep.spec import SweepSpec

MAX_BUNDLE_BYTES = 4 * 1024 * 1024  # code, not data: a folder larger than this is the wrong folder
MAX_BUNDLE_FILES = 500
REF_FIELDS = (("model", "builder"), ("dataset", "loader"))
CODE_DIR = "code"  # beside spec.yaml, in a sweep's folder and a submitted job's working dir


@dataclass(frozen=True)
class CodeBundle:
    """The folder of one file REF: its files (relative path, bytes), and which file and function."""

    field: str  # "model.builder"
    entry: str  # the REF's file, relative to the folder
    function: str
    files: tuple[tuple[str, bytes], ...]
    digest: str  # SHA-256 of the paths and contents

    def write(self, folder: Path) -> None:
        """The bundle's files under `folder` (created)."""
        for name, content in self.files:
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)

    def materialise(self, root: Path | None = None) -> Path:
        """The bundle written once under `root` (default: the temp dir) in a folder named by its hash."""
        folder = (root or Path(tempfile.gettempdir()) / "sweep-code") / self.digest[:24]
        if not folder.is_dir():
            folder.parent.mkdir(parents=True, exist_ok=True)
            # Written aside, then renamed: concurrent trials on one node never see half a folder.
            staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=folder.parent))
            self.write(staging)
            try:
                os.rename(staging, folder)
            except OSError:  # another trial put it there first
                shutil.rmtree(staging, ignore_errors=True)
        return folder

    def ref(self, folder: Path) -> str:
        """The REF naming this bundle's function in its copy at `folder`."""
        return f"{folder / self.entry}:{self.function}"


def _folder_files(folder: Path) -> list[Path]:
    """The .py files of `folder`, and of the packages under it (hidden folders and caches skipped)."""
    found = sorted(folder.glob("*.py"))
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if not sub.name.startswith((".", "__pycache__")) and (sub / "__init__.py").is_file():
            found += _folder_files(sub)
    return found


def pack(text: str, field: str) -> CodeBundle | None:
    """The folder of the file REF `text` as a bundle (None for a module or plugin REF), or RefError."""
    ref = parse_ref(text)
    if ref.kind != "file" or ref.function is None:
        return None
    path = Path(ref.target).expanduser().resolve()
    if not path.is_file():
        raise RefError(f"{field}: file not found ({path})")
    folder = path.parent
    files: list[tuple[str, bytes]] = []
    total = 0
    for file in _folder_files(folder):
        total += file.stat().st_size
        if total > MAX_BUNDLE_BYTES or len(files) >= MAX_BUNDLE_FILES:
            raise RefError(
                f"{field}: the folder of {path.name} ({folder}) holds more than {MAX_BUNDLE_FILES} .py "
                f"files or {MAX_BUNDLE_BYTES // 2**20} MiB, all of which would travel with the sweep; "
                "put the code in a folder of its own"
            )
        files.append((file.relative_to(folder).as_posix(), file.read_bytes()))
    digest = hashlib.sha256()
    for name, content in files:
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return CodeBundle(field, path.name, ref.function, tuple(files), digest.hexdigest())


def _refs(spec: SweepSpec) -> list[tuple[str, str, str]]:
    """(section, field, REF) for each REF the spec names."""
    found = []
    for section, name in REF_FIELDS:
        text = getattr(getattr(spec, section), name, None)
        if isinstance(text, str):
            found.append((section, name, text))
    return found


def pack_spec(spec: SweepSpec) -> tuple[CodeBundle, ...]:
    """A bundle for each file REF the spec names (relative ones already taken from its folder)."""
    bundles = (pack(text, f"{section}.{name}") for section, name, text in _refs(spec))
    return tuple(b for b in bundles if b is not None)


def _with_refs(spec: SweepSpec, refs: dict[str, str]) -> SweepSpec:
    """`spec` with the REF fields named in `refs` ("model.builder" -> REF) replaced."""
    for key, text in refs.items():
        section, _, name = key.partition(".")
        part = getattr(spec, section).model_copy(update={name: text})
        spec = spec.model_copy(update={section: part})
    return spec


def installed(spec: SweepSpec, bundles: tuple[CodeBundle, ...], root: Path | None = None) -> SweepSpec:
    """`spec` naming the bundles' copies on this node, written there if they are not yet."""
    if not bundles:
        return spec
    return _with_refs(spec, {b.field: b.ref(b.materialise(root)) for b in bundles})


def kept_in(data: dict[str, Any], bundles: tuple[CodeBundle, ...], folder: Path) -> dict[str, Any]:
    """Write each bundle under `folder`/code and point the spec mapping `data` (a spec's dump) at it,
    relative to `folder`, as a spec.yaml written there reads its data file."""
    for bundle in bundles:
        target = folder / CODE_DIR / bundle.digest[:12]
        if not target.is_dir():
            bundle.write(target)
        section, _, name = bundle.field.partition(".")
        data[section][name] = f"{CODE_DIR}/{bundle.digest[:12]}/{bundle.entry}:{bundle.function}"
    return data


def ref_identity(text: str | None) -> str | None:
    """What of a REF decides training, wherever its file lies: a file REF's file name and function.

    A sweep's copy of the code (`code/...`) and the file it came from then hash alike
    (sweep.reproducibility), as a data file's path is left out of a trial's hash.
    """
    if text is None:
        return None
    try:
        ref = parse_ref(text)
    except ValueError:
        return text
    return f"{Path(ref.target).name}:{ref.function}" if ref.kind == "file" else text
