"""The HTTP routes: read the request, call `Sweeps`, render. No rules of their own."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from services.api import intake
from services.api.auth import require_token, settings_of
from services.api.models import (
    Health,
    Links,
    Plugin,
    Plugins,
    Problem,
    Status,
    Sweep,
    SweepCounts,
    SweepPage,
    Trials,
    TrialTable,
)
from services.api.problems import MEDIA_TYPE, ApiError
from services.api.states import SweepState
from services.api.sweeps import Sweeps, records
from sweep.refs import DATASETS_GROUP, MODELS_GROUP, plugins
from sweep.results import mlflow_run_url

SweepId = Annotated[
    str,
    Path(pattern=r"^[a-z0-9][a-z0-9-]{0,120}$", description="The sweep id POST /v1/sweeps returned."),
]


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem, "content": {MEDIA_TYPE: {}}} for code in codes}


async def sweeps_of(request: Request) -> Sweeps:  # async: no thread for a dependency that does no I/O
    return request.app.state.sweeps  # type: ignore[no-any-return]


Service = Annotated[Sweeps, Depends(sweeps_of)]
v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_token)], responses=_problems(401, 422, 503))
probes = APIRouter()


def _time(stamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(stamp, UTC) if stamp else None


def render(state: SweepState, request: Request) -> Sweep:
    base = f"/v1/sweeps/{state.sweep_id}"
    parent = state.parent
    ui = settings_of(request).ui_url
    url = (
        mlflow_run_url(ui, parent.record.experiment_id, parent.record.parent_run_id)
        if ui and parent
        else None
    )
    progress = state.progress
    trials = None
    if progress is not None:
        total = max(progress.record.trials_total, progress.finished + progress.failed + progress.running)
        trials = Trials(
            finished=progress.finished, failed=progress.failed, running=progress.running, total=total
        )
    return Sweep(
        id=state.sweep_id,
        name=state.name,
        status=state.status,  # type: ignore[arg-type]
        reason=state.reason,
        queue_position=state.queue_position,
        created_at=_time(state.created),
        ended_at=_time(state.ended),
        ray_job_id=state.job.submission_id if state.job else (parent.job_id if parent else None),
        parent_run_id=parent.record.parent_run_id if parent else None,
        experiment_id=parent.record.experiment_id if parent else None,
        mlflow_url=url,
        metric=parent.metric if parent else None,
        best=progress.best if progress else None,
        trials=trials,
        links=Links(
            self=base,
            trials=f"{base}/trials",
            report=f"{base}/report",
            logs=f"{base}/logs",
            events=f"{base}/events",
            cancel=f"{base}/cancel",
            mlflow=url,
        ),
    )


_SPEC_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/SweepSpec"}},
        "application/yaml": {"schema": {"type": "string", "description": "The spec as YAML."}},
    },
}


@v1.post(
    "/sweeps",
    status_code=202,
    response_model=Sweep,
    summary="Submit a sweep",
    openapi_extra={"requestBody": _SPEC_BODY},
    responses={
        200: {"model": Sweep, "description": "An earlier POST with this Idempotency-Key: its sweep"},
        202: {
            "description": "Submitted as a Ray job: RUNNING, or QUEUED until a sweep slot frees",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        **_problems(400, 408, 409, 413, 415, 422),
        429: {
            "model": Problem,
            "content": {MEDIA_TYPE: {}},
            "description": "SWEEP_MAX_QUEUED_SWEEPS sweeps are queued already",
            "headers": {"Retry-After": {"schema": {"type": "string"}}},
        },
        503: {
            "model": Problem,
            "content": {MEDIA_TYPE: {}},
            "description": "Ray or MLflow cannot be reached, or no turn to submit came within "
            "SWEEP_SUBMIT_WAIT_S (SWEEP_MAX_CONCURRENT_SUBMITS are staged at once): see Retry-After",
            "headers": {"Retry-After": {"schema": {"type": "string"}}},
        },
    },
)
async def submit(
    request: Request,
    sweeps: Service,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key", min_length=1, max_length=200, description="Retries return one sweep."
        ),
    ] = None,
) -> JSONResponse:
    """Validate the spec (JSON or YAML) and run it as a Ray job; poll the `Location` for its status."""
    settings = settings_of(request)
    body = await intake.read_body(request, settings.max_body_bytes, settings.body_timeout_s)
    spec = intake.admit(intake.decode(body, request.headers.get("content-type")), settings)
    async with request.app.state.turns.turn():
        state, created = await run_in_threadpool(sweeps.submit, spec, idempotency_key)
    view = render(state, request)
    return JSONResponse(
        view.model_dump(mode="json"),
        status_code=202 if created else 200,
        headers={"Location": view.links.self},
    )


@v1.get("/sweeps", response_model=SweepPage, summary="List sweeps, newest first")
def list_sweeps(
    request: Request,
    sweeps: Service,
    status: Annotated[Status | None, Query(description="Only sweeps with this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> SweepPage:
    found = sweeps.list(status)
    page = found[offset : offset + limit]
    more = offset + limit < len(found)
    query = f"limit={limit}&offset={offset + limit}" + (f"&status={status}" if status else "")
    return SweepPage(items=[render(s, request) for s in page], next=f"/v1/sweeps?{query}" if more else None)


@v1.get("/sweeps/{sweep_id}", response_model=Sweep, responses=_problems(404), summary="A sweep's status")
async def get_sweep(sweep_id: SweepId, request: Request, sweeps: Service) -> Response:
    # What clients poll: a recent read answers on the event loop, no thread hop, and its JSON is
    # made once per read, not per request (docs/performance.md).
    state = sweeps.recent(sweep_id)
    if state is None:
        state = await run_in_threadpool(sweeps.get, sweep_id)
    bodies: dict[str, tuple[SweepState, bytes]] = request.app.state.bodies
    kept = bodies.get(state.sweep_id)
    if kept is None or kept[0] is not state:
        if len(bodies) >= _BODIES:
            bodies.clear()
        kept = bodies[state.sweep_id] = (state, render(state, request).model_dump_json().encode())
    return Response(kept[1], media_type="application/json")


_BODIES = 1000  # sweeps whose last answer is kept


@v1.get(
    "/sweeps/{sweep_id}/trials",
    response_model=TrialTable,
    responses={200: {"content": {"text/csv": {}}}, **_problems(404)},
    summary="The trial table (JSON, or CSV with ?format=csv)",
)
def get_trials(sweep_id: SweepId, sweeps: Service, format: Literal["json", "csv"] = "json") -> Response:
    state, table = sweeps.trials(sweep_id)
    if format == "csv":
        return Response(table.to_csv(index=False), media_type="text/csv")
    return JSONResponse(TrialTable(sweep_id=state.sweep_id, trials=records(table)).model_dump(mode="json"))


_REPORT_FILES = {
    "json": ("analysis.json", "application/json"),
    "md": ("report.md", "text/markdown; charset=utf-8"),
    "html": ("report.html", "text/html; charset=utf-8"),
}


@v1.get(
    "/sweeps/{sweep_id}/report",
    responses={
        200: {
            "description": "The analysis (JSON), or the report as Markdown or HTML",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/markdown": {},
                "text/html": {},
            },
        },
        **_problems(404, 409),
    },
    summary="The placement report of a sweep that has ended",
)
def get_report(
    sweep_id: SweepId, sweeps: Service, format: Literal["json", "md", "html"] = "json"
) -> Response:
    file, media_type = _REPORT_FILES[format]
    return Response(sweeps.report(sweep_id, file), media_type=media_type)


@v1.get(
    "/sweeps/{sweep_id}/logs",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}, **_problems(404)},
    summary="The last lines the sweep's driver printed",
)
def get_logs(sweep_id: SweepId, sweeps: Service, tail: Annotated[int, Query(ge=1, le=100_000)] = 200) -> str:
    return sweeps.logs(sweep_id, tail)


EventId = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9]{1,10}$",
        description="The id of the last event received (as the Last-Event-ID header, which wins).",
    ),
]


@v1.get(
    "/sweeps/{sweep_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-Sent Events: `trial` once per trial that ended (ids 1, 2, ... in the "
            "order they ended), then `end` (the next id)",
            "content": {"text/event-stream": {}},
        },
        204: {"description": "The sweep has ended and the client has had its `end` event: stop"},
        **_problems(404),
    },
    summary="Follow a sweep: one event per trial end, one at the sweep's end",
)
def get_events(
    sweep_id: SweepId,
    request: Request,
    sweeps: Service,
    last_event_id: EventId = None,
    last_event_id_header: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            pattern=r"^[0-9]{1,10}$",
            description="Resume after this event (what EventSource sends when it reconnects).",
        ),
    ] = None,
) -> Response:
    after = int(last_event_id_header or last_event_id or 0)
    events = sweeps.events(sweep_id, settings_of(request).events_poll_s, after)
    # The first poll here, not in the stream: a 404 or 503 is still an answer of its own.
    first = next(events, _DONE)
    if first is _DONE:  # 204 is what tells EventSource not to reconnect
        return Response(status_code=204)
    return StreamingResponse(
        _sse(itertools.chain([first], events), request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


_DONE = object()


def _sse(events: Iterator[Any], request: Request) -> Iterator[str]:
    try:
        for event in events:
            if event is None:
                yield ": waiting\n\n"  # a comment: keeps proxies from closing the stream
                continue
            data = event.data
            if event.kind == "end":
                data = render(data["state"], request).model_dump(mode="json")
            yield f"id: {event.id}\nevent: {event.kind}\ndata: {json.dumps(data, default=str)}\n\n"
    except ApiError as err:
        problem = Problem(title=err.title, status=err.status, detail=err.detail).model_dump()
        yield f"event: error\ndata: {json.dumps(problem)}\n\n"


@v1.post(
    "/sweeps/{sweep_id}/cancel",
    status_code=202,
    response_model=Sweep,
    responses=_problems(404, 409),
    summary="Stop a sweep: its job ends, its runs end KILLED, the sweep CANCELLED",
)
def cancel(sweep_id: SweepId, request: Request, sweeps: Service) -> Sweep:
    return render(sweeps.cancel(sweep_id), request)


@v1.get(
    "/plugins",
    response_model=Plugins,
    summary="The model builders and data loaders a posted spec may name (installed entry points)",
)
def list_plugins() -> Plugins:
    def listed(group: str) -> list[Plugin]:
        return [Plugin(name=n, target=t) for n, t in sorted(plugins(group).items())]

    return Plugins(models=listed(MODELS_GROUP), datasets=listed(DATASETS_GROUP))


@probes.get("/healthz", response_model=Health, summary="The process is up")
def healthz() -> Health:
    return Health(status="ok", checks={})


@probes.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "Ray's Jobs API or MLflow cannot be reached"}},
    summary="Ray's Jobs API and MLflow answer; how many sweeps run and wait",
)
def readyz(sweeps: Service) -> JSONResponse:
    down = sweeps.unavailable()
    checks = {name: down.get(name, "ok") for name in ("ray", "mlflow")}
    counts = None
    if "ray" not in down:
        with contextlib.suppress(ApiError):  # Ray went away since: the checks say enough
            counts = SweepCounts(**sweeps.counts())
    body = Health(status="unavailable" if down else "ok", checks=checks, sweeps=counts)
    return JSONResponse(body.model_dump(), status_code=503 if down else 200)
