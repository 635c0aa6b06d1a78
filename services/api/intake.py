"""A spec arriving over HTTP: the body read within its limit, parsed, validated, and held to the
server's rules (data files only under the data root, no tracking URI of its own, a trial limit,
model builders and data loaders only from the plugins installed packages register).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import Request

from services.api.problems import BadRequest, Invalid, TooLarge, TooSlow, UnsupportedMediaType, located
from services.api.settings import Settings
from sweep.refs import DATASETS_GROUP, MODELS_GROUP, parse_ref, plugins
from sweep.spec import SpecError, SweepSpec, parse_spec, parse_spec_text

JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


async def read_body(request: Request, limit: int, timeout: float = 10.0) -> bytes:
    """The whole body, or TooLarge as soon as it passes `limit` bytes (declared or streamed), or
    TooSlow when it is not all in within `timeout` seconds."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is {declared} bytes; the limit is {limit}")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise TooLarge(f"the body is over the limit of {limit} bytes")
    except TimeoutError:
        raise TooSlow(f"the body was not sent within {timeout:g} s") from None
    return bytes(body)


def decode(body: bytes, content_type: str | None) -> dict[str, Any]:
    """JSON or YAML (by Content-Type; JSON when none is given) into a mapping, or a 4xx."""
    kind = (content_type or "application/json").split(";")[0].strip().lower()
    is_json = kind in JSON_TYPES or kind.endswith("+json")
    if not is_json and kind not in YAML_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {kind!r} is not taken: send application/json or application/yaml"
        )
    if not body.strip():
        raise BadRequest("the body is empty: send a spec")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadRequest(f"the body is not UTF-8 (byte {err.start})") from None
    try:  # the CLI's reader: aliases, deep nesting, dates and huge integers refused, located
        return parse_spec_text(text, ".json" if is_json else ".yaml")
    except SpecError as err:
        raise BadRequest("the body cannot be read as a spec", located(err.errors)) from None


def admit(data: dict[str, Any], settings: Settings) -> SweepSpec:
    """Validate a posted spec; every problem, the server's rules included, in one Invalid."""
    errors, data = _server_rules(data, settings)
    try:
        spec = parse_spec(data)
    except SpecError as err:
        raise Invalid("the spec is not valid", located(errors + err.errors)) from None
    if spec.trial_count > settings.max_trials:
        errors.append(
            f"search: the spec makes {spec.trial_count} trials ({spec.describe_count()}); "
            f"this server runs at most {settings.max_trials}"
        )
    if errors:
        raise Invalid("the spec is not valid", located(errors))
    return spec


def _server_rules(data: dict[str, Any], settings: Settings) -> tuple[list[str], dict[str, Any]]:
    """Errors of what HTTP may not ask for, and the data with dataset.path made absolute."""
    errors = []
    tracking = data.get("tracking")
    if isinstance(tracking, dict) and tracking.get("uri") is not None:
        errors.append(
            "tracking.uri: not accepted over HTTP (the server's tracking server records every sweep)"
        )
    errors += _code_refs(data)
    dataset = data.get("dataset")
    raw = dataset.get("path") if isinstance(dataset, dict) else None
    if isinstance(dataset, dict) and isinstance(raw, str) and raw:
        folder = dataset.get("source") == "image_folder"
        path, error = _inside_data_root(raw, settings.data_root, folder)
        if error:
            errors.append(f"dataset.path: {error}")
        else:
            data = {**data, "dataset": {**dataset, "path": str(path)}}
    return errors, data


# (section, field, entry-point group) of every REF a spec may name (sweep.refs)
CODE_FIELDS = (("model", "builder", MODELS_GROUP), ("dataset", "loader", DATASETS_GROUP))


def _code_refs(data: dict[str, Any]) -> list[str]:
    """Errors of REFs that are not registered plugins: no code a request names by path or module is
    ever imported, so a POST can run only what the server's installed packages offer."""
    errors = []
    for section, field, group in CODE_FIELDS:
        part = data.get(section)
        raw = part.get(field) if isinstance(part, dict) else None
        if raw is None:
            continue
        installed = plugins(group)
        offered = ", ".join(sorted(installed)) or "none are installed"
        try:
            ref = parse_ref(raw)
        except ValueError as err:
            errors.append(f"{section}.{field}: {err}")
            continue
        if ref.kind != "plugin":
            errors.append(
                f"{section}.{field}: over HTTP only a plugin name registered in entry-point group "
                f"{group} is taken, not a {ref.kind} (got {raw!r}; registered: {offered}; "
                "GET /v1/plugins lists them)"
            )
        elif ref.target not in installed:
            errors.append(f"{section}.{field}: no plugin {raw!r} is registered in {group} ({offered})")
    return errors


def _inside_data_root(raw: str, root: Path | None, folder: bool = False) -> tuple[Path | None, str | None]:
    if root is None:
        return None, "this server takes no data files (SWEEP_DATA_ROOT is not set); use a built-in dataset"
    if "\0" in raw:
        return None, "must not contain NUL bytes"
    given = Path(raw)
    if ".." in given.parts:
        return None, f"must not contain '..' (got {raw!r})"
    base = root.resolve()
    resolved = (base / given).resolve()  # an absolute `given` replaces base; symlinks are followed
    what = "folder" if folder else "file"
    if not resolved.is_relative_to(base):
        return None, f"must be a {what} inside the server's data root (got {raw!r})"
    if not (resolved.is_dir() if folder else resolved.is_file()):
        return None, f"no such {what} in the data root (got {raw!r})"
    return resolved, None
