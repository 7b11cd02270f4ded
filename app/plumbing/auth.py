"""The API key: `Authorization: Bearer <key>` on every route that reads or changes jobs or models."""

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

bearer = HTTPBearer(auto_error=False, description="The service's API_KEY, when one is set.")


async def require_api_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """Without API_KEY every caller is let through (the service then listens on 127.0.0.1 only).

    async: it does no I/O, so it runs on the event loop instead of costing a thread hand-off."""
    expected = request.app.state.settings.api_key
    if not expected:
        return
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(given.encode(), expected.encode()):  # constant time
        raise HTTPException(
            status_code=401,
            detail="missing or wrong API key: send Authorization: Bearer <API_KEY>",
            headers={"WWW-Authenticate": "Bearer"},
        )
