"""SpecError, and pydantic's validation errors as lines a reader can act on:
`where: what is wrong (got what)`."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from sweep.spec.sweep_spec import SweepSpec


class SpecError(ValueError):
    """A spec that cannot be used; `errors` holds one readable line per problem."""

    def __init__(self, errors: Sequence[str], source: str | None = None) -> None:
        self.errors = list(errors)
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + "; ".join(self.errors))


_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")
_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}


FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_ERRORS = 100  # a list of a million bad values is one mistake, not a million lines


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _union_branch(annotation: Any, tag: str) -> Any:
    """The member of a union that pydantic names `tag` (`list[float]`, `Range`, `int`)."""
    for arg in typing.get_args(annotation):
        if _is_model(arg) and arg.__name__ in tag:
            return arg
        if typing.get_origin(arg) is list and tag.startswith("list["):
            return arg
    return None


def _walk(loc: Sequence[Any], model: type[BaseModel] = SweepSpec) -> tuple[str, Any]:
    """A pydantic error location as the reader writes it, and the annotation it ends at.

    Walking the models tells a field or key apart from the name pydantic gives a union's
    branch (`training.steps_per_execution.int`), which is noise for the reader.
    """
    out = ""
    current: Any = model
    for part in loc:
        branches = [a for a in typing.get_args(current) if a is not type(None)]
        if typing.get_origin(current) in (typing.Union, types.UnionType) and len(branches) == 1:
            current = branches[0]  # `X | None`: pydantic names no branch, the part is X's
        if _is_model(current):
            field = current.model_fields.get(part) if isinstance(part, str) else None
            if isinstance(part, str) and FIELD_NAME.fullmatch(part):
                out += f".{part}" if out else part
            else:  # a key no field has: quoted, so odd characters cannot pose as a path
                out += f"[{part!r}]"
            current = field.annotation if field else None
        elif isinstance(part, int):
            out += f"[{part}]"
            args = typing.get_args(current)
            current = args[0] if typing.get_origin(current) is list and args else None
        elif typing.get_origin(current) in (typing.Union, types.UnionType):
            current = _union_branch(current, str(part))
        else:
            out += f".{part}" if out else str(part)
            current = None
    return out, current


def join_location(prefix: str, rest: str) -> str:
    if not prefix:
        return rest
    if rest.startswith("["):
        return prefix + rest
    return f"{prefix}.{rest}"


def _allowed_fields(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The field names allowed at the parent of `loc`, walking the spec models."""
    _, parent = _walk(loc[:-1], model)
    return list(parent.model_fields) if _is_model(parent) else []


_BRANCH_TYPES = frozenset({"float_type", "float_parsing", "int_type", "list_type"})


def _explained(loc: str, located: Sequence[str], own: int) -> bool:
    """Whether another error lies at `loc` or under it (a union's other branch)."""
    return any(
        j != own and (other == loc or other.startswith((loc + ".", loc + "[")))
        for j, other in enumerate(located)
    )


def format_errors(error: ValidationError, model: type[BaseModel] = SweepSpec) -> list[str]:
    """One line per problem: `where: what is wrong (got what)`."""
    lines: list[str] = []
    errors = error.errors(include_url=False)
    located = [_walk(err["loc"], model)[0] for err in errors]
    for i, (err, loc) in enumerate(zip(errors, located, strict=True)):
        kind = err["type"]
        given = err.get("input")
        # A union reports each branch: a mapping is judged by its model branch, anything else by
        # the number or list branch; the other branch's "wrong type" is noise.
        other_branch = kind in _BRANCH_TYPES if isinstance(given, dict) else kind == "model_type"
        if other_branch and _explained(loc, located, i):
            continue
        if kind == "extra_forbidden":
            allowed = _allowed_fields(model, err["loc"])
            hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
            lines.append(f"{loc}: unknown field{hint}")
            continue
        if kind == "missing":
            lines.append(f"{loc}: required field is missing")
            continue
        bound = _BOUNDS.get(kind)
        if bound:
            symbol, key = bound
            limit = err["ctx"][key]
            shown = f"{limit:g}" if isinstance(limit, float) else limit
            lines.append(f"{loc}: must be {symbol} {shown} (got {given!r})")
            continue
        if kind == "literal_error":
            lines.append(f"{loc}: must be one of {err['ctx']['expected']} (got {given!r})")
            continue
        msg = err["msg"]
        for prefix in _PYDANTIC_PREFIXES:
            msg = msg.removeprefix(prefix)
        if kind in ("value_error", "assertion_error"):
            # Our validators may report several lines, each with its own sub-location.
            for line in msg.split("\n"):
                sub, sep, text = line.partition(": ")
                if sep and (sub.startswith("[") or re.fullmatch(r"[a-z_][a-z0-9_.\[\]]*", sub)):
                    lines.append(f"{join_location(loc, sub)}: {text}")
                else:
                    lines.append(f"{loc}: {line}" if loc else line)
            continue
        msg = msg[0].lower() + msg[1:] if msg else msg
        if given is not None and not isinstance(given, (dict, list)):
            msg += f" (got {given!r})"
        lines.append(f"{loc}: {msg}" if loc else msg)
    # A union (list or range) reports a failure for each branch; keep each line once.
    lines = list(dict.fromkeys(lines))
    if len(lines) > MAX_ERRORS:
        lines = [*lines[:MAX_ERRORS], f"... and {len(lines) - MAX_ERRORS} more errors"]
    return lines
