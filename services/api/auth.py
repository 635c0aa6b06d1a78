"""Bearer-token authentication of /v1 calls, when SWEEP_API_TOKEN is set."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.api.problems import Unauthorized
from services.api.settings import Settings

bearer = HTTPBearer(auto_error=False, description="SWEEP_API_TOKEN, when the service has one.")


def settings_of(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def require_token(  # async: run on the event loop, not in a thread of its own
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """401 unless the request carries the service's token (compared in constant time)."""
    expected = settings_of(request).api_token
    if expected is None:
        return
    given = credentials.credentials if credentials and credentials.scheme.lower() == "bearer" else ""
    if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise Unauthorized(
            "a valid `Authorization: Bearer <token>` header is required",
            headers={"WWW-Authenticate": 'Bearer realm="sweep"'},
        )
