"""Domain errors and request errors turned into HTTP answers, in one place."""

import logging
import secrets

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.db.jobs import IdempotencyConflict, JobConflict, JobNotFound
from app.services.errors import ServiceError

log = logging.getLogger(__name__)


def _field_path(loc: tuple | list) -> str:
    # ("body", "torch_mlp", "hidden_units", 0) -> "hidden_units[0]"; the union tag is not a field
    parts = [p for p in loc if p not in ("body", "query", "path", "header") and p not in _MODEL_TAGS]
    text = ""
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text or "body"


_MODEL_TAGS: set[str] = set()


def _describe(error: dict) -> str:
    loc, msg = tuple(error.get("loc", ())), str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") in ("union_tag_invalid", "union_tag_not_found"):  # the `model` discriminator
        loc = (*loc, "model")
        msg = f"must be one of {', '.join(sorted(_MODEL_TAGS))}"
    return f"{_field_path(loc)}: {msg}"


def validation_message(errors: list[dict]) -> str:
    return "; ".join(_describe(e) for e in errors)


def validation_body(loc: tuple[str, ...], message: str) -> dict:
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

    @app.exception_handler(JobNotFound)
    async def not_found(_request: Request, exc: JobNotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(IdempotencyConflict)
    async def idempotency_conflict(_request: Request, exc: IdempotencyConflict) -> JSONResponse:
        return JSONResponse(status_code=422, content=validation_body(("header", "Idempotency-Key"), str(exc)))

    @app.exception_handler(JobConflict)
    async def conflict(_request: Request, exc: JobConflict) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    @app.exception_handler(ServiceError)
    async def service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        if exc.status_code == 422:  # the same shape as every other 422
            field, _, message = exc.message.partition(": ")
            return JSONResponse(status_code=422, content=validation_body(("body", field), message or exc.message))
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.message})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = secrets.token_hex(4)
        log.exception("unexpected error %s on %s %s", error_id, request.method, request.url.path)
        return JSONResponse(
            status_code=500, content={"detail": f"internal error; quote id {error_id} to find it in the server log"}
        )
