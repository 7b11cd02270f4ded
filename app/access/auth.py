"""Who is calling: `Authorization: Bearer <token>` on every route that reads or changes jobs or models.

Three ways in, in this order:
- the service's API_KEY (when set): the bootstrap admin, `api-key`;
- a user's token (`POST /users`, `POST /users/me/tokens`): that user, with their role;
- nothing, while neither API_KEY nor any user exists: `local`, an admin (the service then answers this
  machine only: `app.access.access`).

A token looked up is trusted for PRINCIPAL_CACHE_SECONDS (1) in this process, so a revoked token stops
working within a second on every API process, and a request does not wait for the database each time: past half
that age a request still uses the answer and looks the token up again beside it (refresh-ahead), so a token in
steady use is never looked up on a request's way.
"""

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from cachetools import TTLCache
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from store.audit import record_audit
from store.tables import Role
from store.tokens import user_of_token
from store.users import any_users

bearer = HTTPBearer(
    auto_error=False, description="A user's token (POST /users, /users/me/tokens), or the service's API_KEY."
)


@dataclass(frozen=True)
class Principal:
    user_id: int | None  # None: the API_KEY, or the single-user mode without one
    name: str
    role: Role
    quotas: dict[str, Any] = field(default_factory=dict)  # an admin's overrides for this user (as cached)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin


MAX_TOKENS_KEPT = 10_000  # each API process's memory of tokens
API_KEY_ADMIN = Principal(None, "api-key", Role.admin)
LOCAL_ADMIN = Principal(None, "local", Role.admin)


class Principals:
    """Tokens -> principals for one API process, each answer kept `ttl_seconds`."""

    def __init__(self, sessions: sessionmaker[Session], api_key: str | None, ttl_seconds: float) -> None:
        self.sessions, self.api_key, self.ttl = sessions, api_key, ttl_seconds
        # token -> (looked up at, its principal), for `ttl_seconds`; bounded: past MAX_TOKENS_KEPT the expired go
        # first, then the least recently used
        self._tokens: TTLCache[str, tuple[float, Principal | None]] = TTLCache(
            MAX_TOKENS_KEPT, ttl_seconds, timer=time.monotonic
        )
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._generation = 0  # forget() moves it on: a lookup begun before does not store its answer
        self._users_exist: tuple[float, bool] = (0.0, False)

    def _lookup(self, token: str) -> Principal | None:
        with self.sessions() as session:
            owner = user_of_token(session, token)
        return None if owner is None else Principal(owner.user_id, owner.name, owner.role, owner.quotas)

    def _any_users(self) -> bool:
        with self.sessions() as session:
            return any_users(session)

    def forget(self) -> None:
        """Drop what this process remembers (a user was created or a token revoked here: at once in this one)."""
        self._generation += 1
        self._tokens.clear()
        self._users_exist = (0.0, False)

    async def _look_up(self, token: str) -> Principal | None:
        looked_up_at, generation = time.monotonic(), self._generation  # the answer is no newer than this
        principal = await run_in_threadpool(self._lookup, token)
        if generation != self._generation:  # a user created or a token revoked meanwhile: keep nothing read before
            return principal
        self._tokens[token] = (looked_up_at, principal)
        return principal

    async def _refresh(self, token: str) -> None:
        try:
            await self._look_up(token)
        except Exception:  # the database away for a moment: the next request past the age looks it up itself
            pass
        finally:
            self._refreshing.pop(token, None)

    async def close(self) -> None:
        """Wait for the lookups refreshing in the background: each holds a database connection in a thread, and
        the engine is disposed after this (a connection still out then is never closed, only collected)."""
        while self._refreshing:
            await asyncio.gather(*self._refreshing.values(), return_exceptions=True)

    async def resolve(self, token: str | None) -> Principal | None:
        """The caller, or None when the request must be refused (401)."""
        now = time.monotonic()
        if token and self.api_key and secrets.compare_digest(token.encode(), self.api_key.encode()):
            return API_KEY_ADMIN
        if token:
            cached = self._tokens.get(token)
            if cached is not None and now - cached[0] < self.ttl:  # its age counts from before its lookup
                if now - cached[0] >= self.ttl / 2 and token not in self._refreshing:
                    self._refreshing[token] = asyncio.create_task(self._refresh(token))
                return cached[1]
            return await self._look_up(token)
        if self.api_key:
            return None
        expires, exist = self._users_exist
        if expires <= now:
            exist = await run_in_threadpool(self._any_users)
            self._users_exist = (now + self.ttl, exist)
        return None if exist else LOCAL_ADMIN


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The caller (kept in `request.state.principal`); 401 without a valid token where one is needed."""
    principals: Principals = request.app.state.principals
    principal = await principals.resolve(credentials.credentials if credentials is not None else None)
    if principal is None:
        raise HTTPException(
            status_code=401,
            detail="missing, wrong or revoked token: send Authorization: Bearer <token> (a user's token, or API_KEY)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request.state.principal = principal
    return principal


async def require_api_key(request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
    """Any valid caller (Prometheus' /metrics with METRICS_REQUIRE_KEY)."""
    await authenticate(request, credentials)


def principal_of(request: Request) -> Principal:
    return request.state.principal  # type: ignore[no-any-return]


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def audit(
    request: Request,
    session: Session,
    action: str,
    target: str,
    detail: dict[str, object] | None = None,
) -> None:
    """An entry in the audit log for what the caller just did (`job.cancel`, `job 5`), landing with the change it
    records (in the request's unit of work)."""
    principal = principal_of(request)
    client = f"{request.client.host}" if request.client else None
    record_audit(session, principal.user_id, principal.name, action, target, client, detail)
