"""/predict: class probabilities for uploaded images from a trained model."""

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from app.access.permissions import READS, check_job_readable, owned_by
from app.http.deps import MAX_ID
from app.http.errors import error_responses
from app.http.refusals import InvalidField, NotBase64, UnsupportedMedia
from app.predict.images import Upload
from app.predict.schemas import MAX_IMAGES_PER_REQUEST, TOP_K_DEFAULT, TOP_K_MAX, PredictionsPublic, PredictJSON
from app.predict.service import predict
from app.runtime.pools import WorkPool

router = APIRouter(tags=["predict"])

REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["files"],
                "properties": {
                    "files": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": "Image files: PNG, JPEG, BMP, GIF, WebP, in any mode; a JPEG of any "
                        "size (decoded at a reduced scale), other formats up to MAX_IMAGE_PIXELS (4 M) pixels.",
                    },
                    "job_id": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_ID,
                        "description": "As the query parameter.",
                    },
                    "top_k": {"type": "integer", "minimum": 1, "maximum": TOP_K_MAX},
                },
            }
        },
        "application/json": {"schema": PredictJSON.model_json_schema()},
    },
}
ERRORS: dict[int | str, dict[str, Any]] = {
    **error_responses(
        {
            400: "The only image is base64 that does not decode.",
            404: "Unknown job.",
            409: "The job has no model, or no job has succeeded yet.",
            413: "Too many images or too large a body; or the only image is over a limit.",
            415: "A body neither multipart nor JSON; or the only file is not an image in an accepted format.",
        }
    )
}


def _int_field(value: Any, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidField(name, f"must be an integer, got {str(value)[:40]!r}") from None
    if not low <= number <= high:
        raise InvalidField(name, f"must be between {low} and {high}")
    return number


async def _read_multipart(request: Request) -> tuple[list[Upload], dict[str, Any]]:
    settings = request.app.state.settings
    async with request.form(max_files=settings.max_images_per_request + 1, max_fields=20) as form:
        uploads: list[Upload] = []
        for i, item in enumerate(form.getlist("files")):
            if not isinstance(item, UploadFile):
                raise UnsupportedMedia(f"files[{i}]: expected a file upload, got a text field")
            uploads.append(Upload(item.filename or f"files[{i}]", await item.read(settings.max_image_bytes + 1)))
        fields = {k: form.get(k) for k in ("job_id", "top_k") if form.get(k) is not None}
    return uploads, fields


# A valid body is {"images": [...], "job_id": n, "top_k": k}: base64 holds neither commas nor quotes,
# so it has at most this many of each. Counting them as the body arrives (C speed, no allocation) refuses
# a body of millions of tiny items at its first chunks, before it is read on or parsed into millions of
# objects.
MAX_JSON_ITEMS = MAX_IMAGES_PER_REQUEST + 8


def _parse_json(raw: bytes) -> tuple[list[Upload], dict[str, Any]]:
    """Blocking (a body may be tens of MB): called in a worker thread, never on the event loop."""
    try:
        body = PredictJSON.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidField(where, first["msg"]) from None
    uploads = []
    for i, text in enumerate(body.images):
        try:
            uploads.append(Upload(f"images[{i}]", base64.b64decode(text, validate=True)))
        except (binascii.Error, ValueError):
            uploads.append(Upload(f"images[{i}]", b"", NotBase64(f"images[{i}]: not valid base64")))
    fields = {k: v for k, v in (("job_id", body.job_id), ("top_k", body.top_k)) if v is not None}
    return uploads, fields


async def _read_json(request: Request) -> tuple[list[Upload], dict[str, Any]]:
    chunks: list[bytes] = []
    commas = quotes = 0
    async for chunk in request.stream():
        commas, quotes = commas + chunk.count(b","), quotes + chunk.count(b'"')
        if commas > MAX_JSON_ITEMS or quotes > 2 * MAX_JSON_ITEMS:
            refusal = InvalidField("images", f"at most {MAX_IMAGES_PER_REQUEST} images (base64 strings) per request")
            refusal.body_left_unread = True
            raise refusal
        chunks.append(chunk)
    pool: WorkPool = request.app.state.predict_pool
    return await pool.run(_parse_json, b"".join(chunks))


@router.post(
    "/predict",
    response_model=PredictionsPublic,
    responses=ERRORS,
    openapi_extra={"requestBody": REQUEST_BODY},
    dependencies=[READS],
)
async def predict_images(
    request: Request,
    job_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="The model; default: the best succeeded job.")
    ] = None,
    top_k: Annotated[
        int | None, Query(ge=1, le=TOP_K_MAX, description=f"How many best classes to list (default {TOP_K_DEFAULT}).")
    ] = None,
) -> PredictionsPublic:
    """Upload images as multipart `files`, or as base64 strings in a JSON body `{"images": [...]}`."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        uploads, fields = await _read_multipart(request)
    elif content_type.startswith("application/json"):
        uploads, fields = await _read_json(request)
    else:
        raise UnsupportedMedia("send multipart/form-data with `files`, or application/json with `images` (base64)")
    chosen_job = job_id if job_id is not None else fields.get("job_id")
    if chosen_job is not None:
        chosen_job = _int_field(chosen_job, "job_id", 1, MAX_ID)
        await check_job_readable(request, chosen_job)
    k = top_k if top_k is not None else _int_field(fields.get("top_k", TOP_K_DEFAULT), "top_k", 1, TOP_K_MAX)
    state = request.app.state
    pool: WorkPool = state.predict_pool
    answer = await pool.run(
        predict, state.sessions, state.model_cache, state.settings, uploads, chosen_job, k, owned_by(request)
    )
    state.predictions_served.inc(len(answer.predictions))
    return answer
