"""Every error the API answers with, in one place: domain errors of the store and the services,
request validation errors, HTTP errors (an unknown route, a wrong key), and anything unexpected (a 500
with an id, never a trace). Every answer has one shape: `{"message": ..., "detail": ...}`, where
`message` names the field, file or job and says what the client can do (`app.http.error_schemas.ErrorMessage`)."""

import json
import logging
import re
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.types import Send

from app.http.drain import drain
from app.http.error_schemas import ErrorMessage, ValidationErrorMessage
from app.http.refusals import (
    Busy,
    Forbidden,
    InvalidField,
    NotBase64,
    OverQuota,
    RequestRefused,
    TooLarge,
    UnsupportedMedia,
)
from models.kinds import KindNotInstalled
from store.errors import (
    ArtifactCorrupt,
    ArtifactStoreUnavailable,
    BackupUnsupported,
    IdempotencyConflict,
    JobFinished,
    JobNotFinished,
    JobNotFound,
    NoModel,
    TokenNotFound,
    UserExists,
    UserNotFound,
    UserRemoved,
)
from store.health import database_problem, describe
from store.reproductions import NotAReproduction
from store.sweeps import SweepFinished, SweepNotFound
from store.webhooks import WebhookNotFound

log = logging.getLogger(__name__)

# domain error -> HTTP status, answered as {"message": ..., "detail": ...}; InvalidField and IdempotencyConflict are
# 422s shaped like validation errors (below). tests/store/test_api_validation.py checks every domain error is here.
STATUS_OF: dict[type[Exception], int] = {
    JobNotFound: 404,
    JobFinished: 409,
    JobNotFinished: 409,
    SweepNotFound: 404,
    SweepFinished: 409,
    WebhookNotFound: 404,
    NotAReproduction: 409,
    NoModel: 409,
    ArtifactCorrupt: 409,
    ArtifactStoreUnavailable: 503,
    NotBase64: 400,
    TooLarge: 413,
    UnsupportedMedia: 415,
    Busy: 503,
    Forbidden: 403,
    OverQuota: 429,
    UserExists: 409,
    UserNotFound: 404,
    UserRemoved: 409,
    TokenNotFound: 404,
    BackupUnsupported: 409,
    KindNotInstalled: 409,
}


def status_of(exc: Exception) -> int:
    """The HTTP status of a domain error."""
    return next(code for kind, code in STATUS_OF.items() if isinstance(exc, kind))


_MODEL_TAGS: set[str] = set()
# Why a limit is what it is, said beside the limit in a 422 (parameter location and name -> reason); the
# features register theirs (`explain_limit`).
LIMIT_REASONS: dict[tuple[str, str], str] = {}


def explain_limit(location: str, name: str, reason: str) -> None:
    """Say why the limit of parameter `name` (in `location`: query, path, header) is what it is: a 422 for
    it gives the reason after the limit."""
    LIMIT_REASONS[(location, name)] = reason


FIELD_PREFIX = re.compile(r"^[A-Za-z_][\w.\[\]]*: ")


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "torch_mlp", "hidden_units", 0) -> "hidden_units[0]"; the union tag is not a field
    parts = [p for p in loc if p not in ("body", "query", "path", "header") and p not in _MODEL_TAGS]
    # a tagged union's tag named after the field it picks: ("log_uniform", "log_uniform", 0) -> log_uniform[0]
    parts = [p for i, p in enumerate(parts) if i + 1 == len(parts) or p != parts[i + 1]]
    text = ""
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text or "body"


def _describe(error: dict[str, Any]) -> str:
    loc, msg = tuple(error.get("loc", ())), str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") in ("union_tag_invalid", "union_tag_not_found"):  # the `model` discriminator
        loc = (*loc, "model")
        msg = f"must be one of {', '.join(sorted(_MODEL_TAGS))}"
    reason = LIMIT_REASONS.get(tuple(loc[:2]))
    if reason is not None and str(error.get("type", "")).startswith(("greater_than", "less_than")):
        msg = f"{msg}: {reason}"
    path = _field_path(loc)
    if path == "body" and FIELD_PREFIX.match(msg):  # a whole-body check that names the field itself
        return msg
    return f"{path}: {msg}"


def validation_message(errors: list[dict[str, Any]]) -> str:
    return "; ".join(_describe(e) for e in errors)


def validation_body(loc: tuple[str, ...], message: str) -> dict[str, Any]:
    """A 422 body shaped like FastAPI's own: `detail` a list of errors, plus one readable `message`."""
    return {
        "message": f"{_field_path(loc)}: {message}",
        "detail": [{"type": "value_error", "loc": list(loc), "msg": message}],
    }


def error_body(message: str) -> dict[str, str]:
    """The body of every error but a 422."""
    return {"message": message, "detail": message}


async def send_error(send: Send, status: int, message: str, close: bool = False) -> None:
    """The error answer from an ASGI middleware, before any route runs. `close`: the request's body was not
    read, so the connection closes after the answer (as nginx and Go's net/http do) instead of the server
    reading and dropping the rest of it."""
    body = json.dumps(error_body(message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """A route's documented errors (OpenAPI `responses`), each with the one error shape."""
    return {code: {"model": ErrorMessage, "description": text} for code, text in descriptions.items()}


# What every API route may answer, documented on each (the routers add it).
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    **error_responses(
        {
            401: "API_KEY is set and the request did not send it (`Authorization: Bearer <key>`).",
            403: "A client on another machine without API_KEY set, or a cross-origin browser request.",
            500: "An unexpected error; the message holds an id to find it in the server log.",
            503: "The database is read-only, full or unavailable (the message says which): see Retry-After.",
        }
    ),
    422: {
        "model": ValidationErrorMessage,
        "description": "A field, parameter or header is refused; "
        "`message` names it. Unknown query parameters are refused too.",
    },  # fmt: skip
}


_QUERY_NAMES: dict[int, frozenset[str]] = {}


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route takes, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def refuse_unknown_query_parameters(request: Request) -> None:
    """A dependency of every API route: a query parameter the route does not take is a 422 naming it
    (a misspelt `?satus=` must not look like a filter that matched everything)."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _QUERY_NAMES.get(id(route))
    if known is None:
        known = _QUERY_NAMES[id(route)] = frozenset(_query_names(dependant))
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise InvalidField(unknown[0], f"unknown query parameter (this route takes: {takes})", location="query")


async def refusal_headers(request: Request, exc: Exception) -> dict[str, str] | None:
    """Retry-After for a refusal for now (Busy); for one made before the request's body was read to its end, the
    rest is read first within bounds (`app.http.drain`: so that every client reads the answer), and
    `Connection: close` when a bound stopped it."""
    headers = {}
    if isinstance(exc, Busy | OverQuota) and exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, RequestRefused) and exc.body_left_unread and not await drain(request.scope, request.receive):
        headers["Connection"] = "close"
    return headers or None


def install_error_handlers(app: FastAPI, model_tags: set[str]) -> None:
    _MODEL_TAGS.update(model_tags)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        for e in errors:
            e.pop("input", None)  # do not echo (possibly large) input back
        body = {"message": validation_message(errors), "detail": jsonable_encoder(errors)}
        return JSONResponse(status_code=422, content=body)

    @app.exception_handler(InvalidField)
    async def invalid_field(request: Request, exc: InvalidField) -> JSONResponse:
        body = validation_body((exc.location, exc.field), exc.problem)
        return JSONResponse(status_code=422, content=body, headers=await refusal_headers(request, exc))

    @app.exception_handler(IdempotencyConflict)
    async def idempotency_conflict(_request: Request, exc: IdempotencyConflict) -> JSONResponse:
        return JSONResponse(status_code=422, content=validation_body(("header", "Idempotency-Key"), str(exc)))

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        headers = await refusal_headers(request, exc)
        return JSONResponse(status_code=status_of(exc), content=error_body(str(exc)), headers=headers)

    for kind in STATUS_OF:
        app.add_exception_handler(kind, refused)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.url.path}: the routes are listed at /docs"
        elif exc.status_code == 405:
            message = f"{request.method} is not a method of {request.url.path}: see /docs"
        return JSONResponse(status_code=exc.status_code, content=error_body(message), headers=exc.headers)

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        problem = database_problem(exc)
        if problem is None:
            return await unexpected(request, exc)
        log.warning("%s %s: %s (%s)", request.method, request.url.path, describe(problem), type(exc.orig).__name__)
        return JSONResponse(status_code=503, content=error_body(describe(problem)), headers={"Retry-After": "10"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = secrets.token_hex(4)
        log.exception("unexpected error %s on %s %s", error_id, request.method, request.url.path)
        message = f"internal error; quote id {error_id} to find it in the server log"
        return JSONResponse(status_code=500, content=error_body(message))
