"""Watching training: the curve as CSV, live events, and plots like the report's figures."""

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask

from app.access.permissions import READS, ReadableJobId, ReadableJobIds, owned_by
from app.curves.deps import CurvesDep, EventsDep
from app.curves.downsample import KEPT_PER_BUCKET, MIN_MAX_POINTS
from app.curves.events import JobsTableEvents, Slot, holding
from app.curves.plots import MEDIA_TYPES, ImageFormat, Labelled, compare_plot, job_plot
from app.curves.reading import (
    compared_csv,
    points_csv,
    read_all_points,
    read_downsampled_json,
    read_metrics_json,
)
from app.curves.schemas import MetricsPublic, SystemPublic
from app.curves.system import read_system, system_csv, system_json
from app.http.deps import BulkDep, SessionFactoryDep
from app.http.error_schemas import ErrorMessage
from app.http.errors import error_responses, explain_limit
from app.http.refusals import Busy
from store.jobs import find_job
from store.tables import MAX_INT32

router = APIRouter(tags=["curves"])
jobs_router = APIRouter(tags=["jobs"])  # /jobs/{id}/metrics: a curve, shown beside the other job routes

MAX_PAGE_POINTS = 120_000  # a job writes at most 101,000 (models.kinds.common): older ones page
explain_limit("query", "max_points", f"each split keeps its first, last and best point and the {KEPT_PER_BUCKET} "
              "extremes of at least one stretch of steps")  # fmt: skip

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorMessage, "description": "No job with this id."}}
Width = Annotated[int, Query(ge=200, le=4000, description="Image width in pixels.")]
Height = Annotated[int, Query(ge=150, le=3000, description="Image height in pixels.")]
IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    200: {"content": {"image/png": {}, "image/svg+xml": {}}, "description": "The plot."},
}


@jobs_router.get(
    "/jobs/{job_id}/metrics",
    response_model=MetricsPublic,
    responses=NOT_FOUND,
)
async def get_metrics(
    curves: CurvesDep,
    bulk: BulkDep,
    job_id: ReadableJobId,
    since: Annotated[int | None, Query(ge=-1, le=MAX_INT32, description="Only points with step > since.")] = None,
    max_points: Annotated[
        int | None,
        Query(
            ge=MIN_MAX_POINTS,
            le=1_000_000,
            description="At most this many points that keep the curve's shape: per split, the extremes of "
            "loss and accuracy in each stretch of steps, the first and last point, and the best test accuracy.",
        ),
    ] = None,
    split: Annotated[Literal["train", "test"] | None, Query(description="Only this split's points.")] = None,
    limit: Annotated[
        int, Query(ge=10, le=MAX_PAGE_POINTS, description="Points per answer; `next_since` pages on.")
    ] = MAX_PAGE_POINTS,
) -> Response:
    """The curve in step order: train running means every `log_every` steps, test evaluations every `eval_every`
    (every point as CSV: `/jobs/{job_id}/metrics.csv`)."""
    if max_points is not None:  # a few hundred points, from the cached curve: a small request
        body = await run_in_threadpool(read_downsampled_json, curves, job_id, since, max_points, split)
    else:
        body = await bulk.run(read_metrics_json, curves, job_id, since, limit, split)
    return Response(body, media_type="application/json")


@jobs_router.get(
    "/jobs/{job_id}/system",
    response_model=SystemPublic,
    responses={
        **NOT_FOUND,
        200: {
            "description": "The samples; with `format=csv`, as CSV (`attempt,step,seconds,cpu,rss_mb,data_wait,"
            "gpu_util,gpu_mem_mb`).",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
    },
)
async def get_system(
    sessions: SessionFactoryDep,
    job_id: ReadableJobId,
    max_points: Annotated[
        int, Query(ge=2, le=10_000, description="At most this many samples, evenly spread (first and last kept).")
    ] = 2000,
    format: Annotated[Literal["json", "csv"], Query(description="`csv`: the samples as CSV.")] = "json",
) -> Response:
    """How hard the job's training process worked: CPU use (a fraction of the job's `cpus`), resident memory,
    the fraction of step time spent preparing batches, and on a GPU its utilisation and memory; one sample every
    SYSTEM_METRICS_SECONDS of each attempt."""
    rows = await run_in_threadpool(read_system, sessions, job_id, max_points)
    if format == "csv":
        return StreamingResponse(system_csv(rows), media_type="text/csv")
    return Response(system_json(job_id, rows), media_type="application/json")


@router.get(
    "/jobs/{job_id}/metrics.csv",
    response_class=StreamingResponse,
    responses={**NOT_FOUND, 200: {"content": {"text/csv": {}}, "description": "step,split,loss,accuracy"}},
)
async def get_metrics_csv(
    curves: CurvesDep,
    bulk: BulkDep,
    job_id: ReadableJobId,
    split: Annotated[Literal["train", "test"] | None, Query(description="Only this split's points.")] = None,
) -> StreamingResponse:
    """Every point of the curve as CSV (header `step,split,loss,accuracy`), for a spreadsheet or pandas."""
    points = await bulk.run(read_all_points, curves, job_id, split)
    return StreamingResponse(
        points_csv(points),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="job-{job_id}-metrics.csv"'},
    )


@router.get(
    "/jobs/{job_id}/events",
    response_class=EventSourceResponse,
    responses={
        **NOT_FOUND,
        200: {
            "content": {"text/event-stream": {}},
            "description": "Server-sent events: `status`, `progress`, `points` (new curve points), `alert` (an "
            "alert rule fired: its record as in `alerts_fired`), `system` (the newest system sample, as in "
            "/jobs/{id}/system) and, last, `end`. Each event's id is the last step "
            "whose points were sent: reconnect with `Last-Event-ID`.",
        },
        **error_responses({503: "This API process has EVENTS_MAX_STREAMS streams open: see Retry-After."}),
    },
)
async def follow_job(
    request: Request,
    sessions: SessionFactoryDep,
    events: EventsDep,
    job_id: ReadableJobId,
    last_event_id: Annotated[
        int | None, Header(ge=-1, le=MAX_INT32, description="Resume after this step (the last event's id).")
    ] = None,
) -> EventSourceResponse:
    """Follow a job as it trains; the stream ends after the job's final status (or after
    EVENTS_IDLE_SECONDS without anything to send: reconnect with `Last-Event-ID`)."""
    slot = _stream_slot(request)  # before any database read: a refusal costs next to nothing
    try:
        await run_in_threadpool(_check_exists, sessions, job_id)  # 404 before the stream starts
    except BaseException:
        slot.release()
        raise
    settings = request.app.state.settings
    return _event_stream(request, slot, events.stream(job_id, last_event_id, settings.events_idle_seconds))


def _stream_slot(request: Request) -> Slot:
    """One of this process's EVENTS_MAX_STREAMS stream slots, or a 503 with Retry-After."""
    slot: Slot | None = request.app.state.stream_slots.take()
    if slot is None:
        limit = request.app.state.settings.events_max_streams
        raise Busy(f"this API process has {limit} event streams open, its limit: try again in a few seconds, "
                   "or poll GET /jobs/{id}", retry_after=5)  # fmt: skip
    return slot


def _event_stream(request: Request, slot: Slot, events: AsyncIterator[dict[str, Any] | bytes]) -> EventSourceResponse:
    """An SSE answer that holds its stream slot while it is open, with keep-alive pings every
    EVENTS_PING_SECONDS."""
    settings = request.app.state.settings
    return EventSourceResponse(
        holding(slot, events),
        ping=settings.events_ping_seconds,
        headers={"Cache-Control": "no-store"},
        background=BackgroundTask(slot.release),
    )


def _check_exists(sessions: Any, job_id: int) -> None:
    with sessions() as session:
        find_job(session, job_id)


def _labelled(curves: CurvesDep, sessions: Any, job_id: int, with_system: bool = False) -> Labelled:
    view = curves.view(job_id)
    with sessions() as session:
        job = find_job(session, job_id)
    system = read_system(sessions, job_id, max_points=2000) if with_system else ()
    return Labelled(view, job.name, job.model, system)


def _plot_response(data: bytes, image_format: ImageFormat) -> Response:
    return Response(data, media_type=MEDIA_TYPES[image_format], headers={"Cache-Control": "no-store"})


@router.get("/jobs/{job_id}/plot.{image_format}", response_class=Response, responses=IMAGE_RESPONSES)
async def plot_job(
    sessions: SessionFactoryDep,
    curves: CurvesDep,
    bulk: BulkDep,
    job_id: ReadableJobId,
    image_format: ImageFormat,
    width: Width = 1000,
    height: Height = 400,
) -> Response:
    """Loss and accuracy against step, train and test, like the report's figures (also for running jobs); below
    them, once the job has system samples, its CPU use and data wait, and its memory."""

    def draw() -> bytes:
        return job_plot(_labelled(curves, sessions, job_id, with_system=True), width, height, image_format)

    return _plot_response(await bulk.run(draw), image_format)


@router.get(
    "/plots/compare.{image_format}",
    response_class=Response,
    responses=IMAGE_RESPONSES,
)
async def plot_comparison(
    sessions: SessionFactoryDep,
    curves: CurvesDep,
    bulk: BulkDep,
    image_format: ImageFormat,
    jobs: ReadableJobIds,
    metric: Literal["loss", "accuracy"] = "accuracy",
    split: Literal["train", "test"] = "test",
    width: Width = 900,
    height: Height = 500,
) -> Response:
    """Several jobs' curves of one metric and split in one plot, with a legend of their names."""

    def draw() -> bytes:
        labelled = [_labelled(curves, sessions, job_id) for job_id in jobs]
        return compare_plot(labelled, metric, split, width, height, image_format)

    return _plot_response(await bulk.run(draw), image_format)


@router.get(
    "/compare.csv",
    response_class=StreamingResponse,
    responses={**NOT_FOUND, 200: {"content": {"text/csv": {}}, "description": "job_id,name,step,split,loss,accuracy"}},
)
async def compare_csv(
    sessions: SessionFactoryDep,
    curves: CurvesDep,
    bulk: BulkDep,
    jobs: ReadableJobIds,
    split: Annotated[Literal["train", "test"] | None, Query(description="Only this split's points.")] = None,
) -> StreamingResponse:
    """Every point of several jobs' curves as one CSV (the page's comparison download): a column for the job's
    id and name (a name that starts like a spreadsheet formula gets a `'` first)."""

    def read() -> list[tuple[int, str, list[Any]]]:
        with sessions() as session:
            names = {job_id: find_job(session, job_id).name or "" for job_id in jobs}
        return [(job_id, names[job_id], read_all_points(curves, job_id, split)) for job_id in jobs]

    labelled = await bulk.run(read)
    return StreamingResponse(
        compared_csv(labelled),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="compare-{"-".join(map(str, jobs))}.csv"'},
    )


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`jobs` (the newest jobs' rows) first, then `job` for each row that changes and "
            '`gone` (`{"id"}`) for a row no longer among them (deleted, or older than the newest).',
        },
        **error_responses({503: "This API process has EVENTS_MAX_STREAMS streams open: see Retry-After."}),
    },
    dependencies=[READS],
)
async def follow_jobs(request: Request) -> EventSourceResponse:
    """Every job's status, progress and test accuracy as they change (the web page's table); the stream
    ends after EVENTS_IDLE_SECONDS without a change (a browser's EventSource reconnects by itself)."""
    table: JobsTableEvents = request.app.state.table_events
    slot = _stream_slot(request)
    only = owned_by(request)  # with VISIBILITY=own, a member's or viewer's own rows
    shown = None if only is None else (lambda row: row["owner_id"] == only.user_id)
    return _event_stream(request, slot, table.stream(request.app.state.settings.events_idle_seconds, shown))
