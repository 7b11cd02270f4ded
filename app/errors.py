"""Every error the API answers with, in one place: domain errors of the store and the services,
request validation errors, and anything unexpected (a 500 with an id, never a trace)."""

import logging
import re
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.services.errors import InvalidField, NotBase64, TooLarge, UnsupportedMedia
from store.errors import IdempotencyConflict, JobFinished, JobNotFinished, JobNotFound, NoModel
from store.sweeps import SweepFinished, SweepNotFound

log = logging.getLogger(__name__)

# domain error -> HTTP status, answered as {"detail": message}; InvalidField and IdempotencyConflict are
# 422s shaped like validation errors (below). tests/test_api_validation.py checks every domain error is here.
STATUS_OF: dict[type[Exception], int] = {
    JobNotFound: 404,
    JobFinished: 409,
    JobNotFinished: 409,
    SweepNotFound: 404,
    SweepFinished: 409,
    NoModel: 409,
    NotBase64: 400,
    TooLarge: 413,
    UnsupportedMedia: 415,
}

_MODEL_TAGS: set[str] = set()
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
    async def invalid_field(_request: Request, exc: InvalidField) -> JSONResponse:
        return JSONResponse(status_code=422, content=validation_body((exc.location, exc.field), exc.problem))

    @app.exception_handler(IdempotencyConflict)
    async def idempotency_conflict(_request: Request, exc: IdempotencyConflict) -> JSONResponse:
        return JSONResponse(status_code=422, content=validation_body(("header", "Idempotency-Key"), str(exc)))

    async def refused(_request: Request, exc: Exception) -> JSONResponse:
        status = next(code for kind, code in STATUS_OF.items() if isinstance(exc, kind))
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    for kind in STATUS_OF:
        app.add_exception_handler(kind, refused)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = secrets.token_hex(4)
        log.exception("unexpected error %s on %s %s", error_id, request.method, request.url.path)
        return JSONResponse(
            status_code=500, content={"detail": f"internal error; quote id {error_id} to find it in the server log"}
        )
