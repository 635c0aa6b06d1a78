"""YAML and JSON text into a mapping, hardened: plain data only, bounded in time and memory, every
problem named with its line and column."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from sweep.spec.errors import FIELD_NAME, SpecError, join_location

MAX_SPEC_BYTES = 1024 * 1024  # a spec is a page of settings; anything near this is not one
MAX_SPEC_DEPTH = 20  # the spec's own nesting is 4 levels deep
MAX_SPEC_NODES = 10_000  # a spec has a few hundred values; PyYAML (pure Python) reads slowly
_INT_DIGITS = 4300  # Python's int() refuses longer (sys.get_int_max_str_digits)


class SpecLoader(yaml.SafeLoader):
    """YAML for specs: plain data only, bounded in time and memory.

    Refused, each with its line and column: aliases (`*name`; a few lines of them expand
    exponentially, "billion laughs") and merge keys (`<<`), nesting deeper than MAX_SPEC_DEPTH,
    more than MAX_SPEC_NODES values, keys that are not text or appear twice (YAML keeps the last
    silently), scalars that YAML would turn into dates, timestamps or bytes (`name: 2024-06-01`
    is a date to YAML, not text), sets and ordered maps, and integers too long for Python.
    Tags that construct Python objects are refused by SafeLoader already.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a spec: write the value out", event.start_mark
            )
        self._depth = getattr(self, "_depth", 0) + 1
        self._nodes = getattr(self, "_nodes", 0) + 1
        try:
            if self._depth > MAX_SPEC_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_SPEC_DEPTH} levels", self.peek_event().start_mark
                )
            if self._nodes > MAX_SPEC_NODES:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"more than {MAX_SPEC_NODES:,} values: not a spec",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        first_line: dict[str, int] = {}
        for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():
            if key_node.tag == "tag:yaml.org,2002:merge":
                self._fail(key_node, "merge keys (<<) are not allowed in a spec: write the fields out")
            key = self.construct_object(key_node)
            if not isinstance(key, str):
                self._fail(key_node, f"the key {key!r} is not text; quote it if you mean text")
            if key in first_line:
                self._fail(key_node, f"the key {key!r} appears twice (first on line {first_line[key]})")
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)

    def _fail(self, node: Any, problem: str) -> Any:
        raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)

    def _refuse(self, node: Any, what: str) -> Any:
        return self._fail(node, f"{what} {node.value!r} is not a spec value; quote it if you mean text")

    def construct_yaml_timestamp(self, node: Any) -> Any:
        return self._refuse(node, "the date or timestamp")

    def construct_yaml_binary(self, node: Any) -> Any:
        return self._refuse(node, "the binary value")

    def construct_yaml_int(self, node: Any) -> Any:
        if len(node.value) > _INT_DIGITS:
            return self._fail(node, f"an integer of {len(node.value)} characters is not a spec value")
        return super().construct_yaml_int(node)

    def construct_collection(self, node: Any) -> Any:
        return self._fail(node, f"a YAML !!{node.tag.rsplit(':', 1)[-1]} is not a spec value")


SpecLoader.add_constructor("tag:yaml.org,2002:timestamp", SpecLoader.construct_yaml_timestamp)
SpecLoader.add_constructor("tag:yaml.org,2002:binary", SpecLoader.construct_yaml_binary)
SpecLoader.add_constructor("tag:yaml.org,2002:int", SpecLoader.construct_yaml_int)
for _tag in ("set", "omap", "pairs"):  # Python sets and tuples: not what a spec's fields hold
    SpecLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", SpecLoader.construct_collection)


def _line_column(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"line {line}, column {offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"


def _json_too_deep(text: str) -> int | None:
    """Where JSON text nests deeper than MAX_SPEC_DEPTH, without parsing it (json.loads
    recurses: deep text overflows the stack); None if it does not."""
    depth = 0
    in_string = escaped = False
    for offset, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_SPEC_DEPTH:
                return offset
        elif char in "]}":
            depth -= 1
    return None


def _yaml_problem(err: yaml.YAMLError, text: str) -> str:
    """`line L, column C: invalid YAML: problem` for any error PyYAML raises."""
    if isinstance(err, yaml.reader.ReaderError):  # a character YAML does not allow: no mark, an offset
        where = _line_column(text, err.position) + ": " if isinstance(err.position, int) else ""
        code = err.character if isinstance(err.character, int) else ord(str(err.character)[:1] or "?")
        return f"{where}invalid YAML: the character #x{code:04x} is not allowed"
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{where}invalid YAML: {problem}"


def _unpaired_surrogate(data: Any, where: str = "") -> str | None:
    """Where `data` holds text that is not unicode: a lone UTF-16 surrogate, which the escape
    `\\ud800` makes in JSON and in YAML's double quotes (and which nothing can encode)."""
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            return where or "the document"
    elif isinstance(data, Mapping):
        for key, value in data.items():
            path = join_location(
                where, key if isinstance(key, str) and FIELD_NAME.fullmatch(key) else f"[{key!r}]"
            )
            found = _unpaired_surrogate(key, path) or _unpaired_surrogate(value, path)
            if found:
                return found
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found = _unpaired_surrogate(value, f"{where}[{i}]")
            if found:
                return found
    return None


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (json.loads keeps the last, silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def parse_spec_text(text: str, suffix: str = ".yaml", source: str | None = None) -> dict[str, Any]:
    """YAML or JSON text into a mapping, or SpecError naming the line and the problem."""
    if len(text.encode("utf-8", errors="replace")) > MAX_SPEC_BYTES:
        raise SpecError([f"larger than {MAX_SPEC_BYTES // 1024} KiB: not a spec"], source)
    if suffix == ".json" and (offset := _json_too_deep(text)) is not None:
        raise SpecError([f"{_line_column(text, offset)}: nested deeper than {MAX_SPEC_DEPTH} levels"], source)
    try:
        # SpecLoader is a SafeLoader, restricted further
        if suffix == ".json":
            data = json.loads(text, object_pairs_hook=_json_object)
        else:
            data = yaml.load(text, Loader=SpecLoader)
    except _DuplicateKey as err:
        raise SpecError([f"invalid JSON: the key {err.key!r} appears twice in one object"], source) from None
    except json.JSONDecodeError as err:
        raise SpecError([f"line {err.lineno}, column {err.colno}: invalid JSON: {err.msg}"], source) from None
    except yaml.YAMLError as err:
        raise SpecError([_yaml_problem(err, text)], source) from None
    except ValueError as err:  # JSON: an integer of more than 4300 digits
        digits = re.search(rf"\d{{{_INT_DIGITS + 1},}}", text)
        where = f"{_line_column(text, digits.start())}: " if digits else ""
        raise SpecError([f"{where}cannot be read as a spec: {str(err)[:200]}"], source) from None
    if not isinstance(data, Mapping):
        kind = "empty" if data is None else type(data).__name__
        raise SpecError([f"the top level must be a mapping of fields (got {kind})"], source)
    surrogate = _unpaired_surrogate(data)
    if surrogate:
        raise SpecError([f"{surrogate}: not unicode text (an unpaired surrogate such as \\ud800)"], source)
    return dict(data)


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """Read YAML or JSON into a mapping, or raise SpecError naming the file and the problem."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_SPEC_BYTES:
            raise SpecError([f"larger than {MAX_SPEC_BYTES // 1024} KiB: not a spec"], str(path))
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(["file not found"], str(path)) from None
    except IsADirectoryError:
        raise SpecError(["is a directory, not a spec file"], str(path)) from None
    except UnicodeDecodeError as err:
        raise SpecError([f"byte {err.start}: not UTF-8 text"], str(path)) from None
    except OSError as err:
        raise SpecError([f"cannot be read: {err}"], str(path)) from None
    return parse_spec_text(text, path.suffix, str(path))
