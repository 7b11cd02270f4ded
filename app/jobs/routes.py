"""/jobs: submit, list, inspect, follow and cancel training jobs."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from sqlalchemy.orm import Session

from app.access.auth import audit
from app.access.permissions import (
    READS,
    ChangeableJob,
    ChangeableJobId,
    CreatorDep,
    ReadableJob,
    ReadableJobId,
    owned_by,
)
from app.http.deps import SessionDep, SessionFactoryDep, UnitOfWorkDep
from app.http.error_schemas import ErrorMessage
from app.http.refusals import InvalidField
from app.jobs.export import MAX_EXPORTED_JOBS, RUN_COLUMNS, every_job, runs_csv
from app.jobs.job_plan import plan
from app.jobs.reproduction import verdict
from app.jobs.schemas import (
    AttemptPublic,
    AttemptsPublic,
    JobAnnotations,
    JobPublic,
    JobsPublic,
    ModelKindPublic,
    ModelKindsPublic,
    PlanPublic,
    ReproductionPublic,
)
from app.jobs.selection import JobSelectionDep
from app.jobs.service import (
    check_init_from_job,
    job_public,
    jobs_page,
    read_job,
    submit,
)
from app.users.quotas import check_submission
from models.kinds import KINDS
from models.kinds.common import NO_CONTROL_CHARACTERS
from specs import JOB_CLASSES, JobSpec, default_job_spec
from store.artifacts import model_chunks, model_info, verify_model
from store.attempts import attempts_of
from store.jobs import annotate_job, delete_job, request_cancel
from store.logs import read_log
from store.reproductions import create_reproduction
from store.tables import Job

router = APIRouter(prefix="/jobs", tags=["jobs"])
table_router = APIRouter(tags=["jobs"])  # /jobs.csv
kinds_router = APIRouter(prefix="/models", tags=["jobs"])

SPEC_EXAMPLES: dict[str, Any] = {
    "default": {
        "summary": "The assignment's default PyTorch MLP (about 0.49)",
        "value": {"model": "torch_mlp"},
    },
    "report_800_600_400": {
        "summary": "The report's tuned MLP: 800-600-400, Adam, 5000 steps (about 0.53)",
        "value": {
            "model": "torch_mlp",
            "hidden_units": [800, 600, 400],
            "optimizer": "adam",
            "learning_rate": 0.0001,
            "max_steps": 5000,
        },
    },
    "report_deep_narrow": {
        "summary": "The report's deep MLP: 100-100-50-50-50-50, Adam, 5000 steps (about 0.53)",
        "value": {
            "model": "torch_mlp",
            "hidden_units": [100, 100, 50, 50, 50, 50],
            "optimizer": "adam",
            "max_steps": 5000,
        },
    },
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorMessage, "description": "No job with this id."}}


@router.post(
    "",
    status_code=201,
    response_model=JobPublic | PlanPublic,
    responses={
        200: {
            "model": JobPublic | PlanPublic,
            "description": "An earlier job with the same Idempotency-Key and spec; or, with `dry_run=true`, the plan.",
        },
        201: {"headers": {"Location": {"description": "/jobs/{id} of the new job", "schema": {"type": "string"}}}},
    },
)
def submit_job(
    request: Request,
    principal: CreatorDep,
    spec: Annotated[JobSpec, Body(openapi_examples=SPEC_EXAMPLES)],
    sessions: SessionFactoryDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=189,  # stored with its owner's id in front (store.jobs.owners_key): 200 at most
            pattern=NO_CONTROL_CHARACTERS,
            description="Retry-safe submission: the same key and spec from the same user return "
            "the first job (200); the same key with another spec is refused (422). Each user's keys are their own.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        Query(description="Queue nothing: answer the job's plan (cost, expected time, queue place, who can take it)."),
    ] = False,
    probe: Annotated[
        bool,
        Query(description="With `dry_run`: when no earlier job of the same shape ran, time a few real steps."),
    ] = True,
) -> JobPublic | PlanPublic:
    """Queue a training job. Omitted fields take the assignment's defaults; the answer holds the full spec. With
    `dry_run=true` nothing is queued: the answer is the job's plan (200)."""
    settings = request.app.state.settings
    with sessions() as session:
        check_init_from_job(session, spec, owned_by(request))
        if dry_run:
            request.app.state.plan_rate.check(settings, principal)
            response.status_code = 200
            return plan(session, spec, request.app.state.prober, settings.executor_alive_seconds, probe)

    def admit(session: Session, new: Job) -> None:
        check_submission(session, settings, request.app.state.recent_hours, principal, spec.priority, spec.gpus,
                         inserted=True, preemptible=spec.preemptible)  # fmt: skip
        audit(request, session, "job.create", f"job {new.id}", {"model": new.model, "name": new.name})

    job, created = submit(sessions, spec, idempotency_key, principal.user_id, settings, admit)
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/jobs/{job.id}"
    return job


@router.get("", response_model=JobsPublic, dependencies=[READS])
def get_jobs(
    session: SessionDep,
    selection: JobSelectionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> JobsPublic:
    """Jobs, newest first or as `sort` says, filtered by status, model, tag, owner, a word of the name and
    conditions on their spec and final metrics."""
    return jobs_page(session, selection.which, limit, offset, selection.order)


@table_router.get(
    "/jobs.csv",
    response_class=StreamingResponse,
    dependencies=[READS],
    responses={
        200: {"content": {"text/csv": {}}, "description": "A header and a row a job: " + ", ".join(RUN_COLUMNS)
              + ", then each spec field, then each final metric."},
        413: {"model": ErrorMessage, "description": f"More than {MAX_EXPORTED_JOBS:,} jobs selected: filter them."},
    },
)  # fmt: skip
def get_jobs_csv(session: SessionDep, selection: JobSelectionDep) -> StreamingResponse:
    """The runs table as CSV, for a spreadsheet or a class's leaderboard: every job `GET /jobs` would list with
    the same query (all pages), its spec fields and final metrics as columns (lists as JSON; a text that starts
    like a spreadsheet formula gets a `'` first)."""
    jobs = every_job(session, selection.which, selection.order)
    return StreamingResponse(runs_csv(jobs), media_type="text/csv",
                             headers={"Content-Disposition": 'attachment; filename="jobs.csv"'})  # fmt: skip


@router.patch("/{job_id}", response_model=JobPublic, responses=NOT_FOUND)
def annotate(
    request: Request, job_id: ChangeableJobId, session: UnitOfWorkDep, annotations: JobAnnotations
) -> JobPublic:
    """Name, tag or write notes on a job, whatever its status (what it trains does not change). Only the fields
    sent change: `{"tags": ["wide", "adam"]}` leaves its name and notes as they are."""
    sent = annotations.model_dump(include=annotations.model_fields_set)
    if "tags" in sent and sent["tags"] is None:
        sent["tags"] = []
    job = annotate_job(session, job_id, **sent)
    audit(request, session, "job.update", f"job {job_id}", {"fields": sorted(sent)})
    return job_public(session, job, request.app.state.settings)


@router.get("/{job_id}", response_model=JobPublic, responses=NOT_FOUND)
def get_job(request: Request, sessions: SessionFactoryDep, job_id: ReadableJobId) -> JobPublic:
    """Status, progress, timings, the final metrics or the error, and the stored model."""
    return read_job(sessions, job_id, request.app.state.settings)


@router.post(
    "/{job_id}/cancel",
    response_model=JobPublic,
    responses={**NOT_FOUND, 409: {"model": ErrorMessage, "description": "The job has already finished."}},
)
def cancel_job(request: Request, job: ChangeableJob, session: UnitOfWorkDep) -> JobPublic:
    """Cancel a queued job at once, or ask a running one to stop (it keeps the points it logged)."""
    cancelled = request_cancel(session, job.id)
    audit(request, session, "job.cancel", f"job {job.id}")
    return job_public(session, cancelled, request.app.state.settings)


@router.post(
    "/{job_id}/reproduce",
    status_code=201,
    response_model=JobPublic,
    responses={
        **NOT_FOUND,
        201: {"headers": {"Location": {"description": "/jobs/{id} of the reproduction", "schema": {"type": "string"}}}},
        409: {"model": ErrorMessage, "description": "The job has not ended yet."},
    },
)
def reproduce(
    request: Request, principal: CreatorDep, job: ReadableJob, session: UnitOfWorkDep, response: Response
) -> JobPublic:
    """Run an ended job again with its stored spec (same seed, data set and `init_from_job`); once the copy ends,
    GET /jobs/{copy}/reproduction says whether its curve is the same bit for bit, or how far it is and what
    differed in the two runs' records."""

    copy = create_reproduction(session, job.id, principal.user_id)
    state = request.app.state  # counted with the copy in: one query, and two at once take turns
    check_submission(session, state.settings, state.recent_hours, principal, job.priority, job.gpus, inserted=True,
                     preemptible=job.preemptible)  # fmt: skip
    audit(request, session, "job.create", f"job {copy.id}", {"reproduces": job.id})
    response.headers["Location"] = f"/jobs/{copy.id}"
    return job_public(session, copy, request.app.state.settings)


@router.get(
    "/{job_id}/reproduction",
    response_model=ReproductionPublic,
    responses={**NOT_FOUND, 409: {"model": ErrorMessage, "description": "The job reproduces no job."}},
)
def get_reproduction(job: ReadableJob, session: UnitOfWorkDep) -> ReproductionPublic:
    """A reproduction's verdict: `identical` (every point bit for bit) or `different` (the largest difference per
    metric, and the fields of the two records that differ); `pending` until it has ended."""
    return verdict(session, job.id)


@router.get(
    "/{job_id}/model",
    response_class=Response,
    responses={
        **NOT_FOUND,
        200: {"content": {"application/octet-stream": {}}, "description": "The model as a safetensors file."},
        409: {"model": ErrorMessage, "description": "The job has not succeeded, has no model, or its model is damaged"},
    },
)
def download_model(job: ReadableJob, session: SessionDep, sessions: SessionFactoryDep) -> StreamingResponse:
    """The trained weights, normalisation constants, spec and class names, as one safetensors file
    (streamed from the database in 1 MB chunks, after a first read checks them against their SHA-256,
    which is the ETag)."""
    info = model_info(session, job.id)
    verify_model(session, info)
    return StreamingResponse(
        model_chunks(sessions, info),
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="job-{job.id}.safetensors"',
            "Content-Length": str(info.size_bytes),
            "ETag": f'"{info.sha256}"',
        },
    )


@router.delete(
    "/{job_id}",
    status_code=204,
    response_class=Response,
    responses={
        **NOT_FOUND,
        409: {"model": ErrorMessage, "description": "The job is queued or running: cancel it first."},
    },
)
def remove_job(request: Request, job_id: ChangeableJobId, session: UnitOfWorkDep) -> Response:
    """Delete a finished job: its points, checkpoint and model go with it (a sweep keeps the trial's
    parameters). A queued or running job is refused with 409: cancel it first, then delete it."""
    delete_job(session, job_id)
    audit(request, session, "job.delete", f"job {job_id}")
    return Response(status_code=204)


@router.get("/{job_id}/attempts", response_model=AttemptsPublic, responses=NOT_FOUND)
def get_attempts(job: ReadableJob, session: SessionDep) -> AttemptsPublic:
    """Every attempt at the job, the first first: its executor, start and end, how it ended (`preempted`,
    `lost_heartbeat`...), the checkpoint step it resumed from and the step it reached."""
    return AttemptsPublic(data=[AttemptPublic.from_row(row) for row in attempts_of(session, job.id)])


@router.get(
    "/{job_id}/logs",
    response_class=Response,  # errors stay JSON; the 200 is text/plain
    responses={
        **NOT_FOUND,
        200: {
            "content": {"text/plain": {}},
            "description": "The output; headers say which attempt (`X-Attempt`) and whether older output was "
            "left out (`X-Truncated`).",
        },
    },
)
def get_logs(
    job: ReadableJob,
    session: SessionDep,
    attempt: Annotated[int | None, Query(ge=1, le=1000, description="Which attempt; default: the latest.")] = None,
    tail: Annotated[int | None, Query(ge=1, le=100_000, description="Only the last this many lines.")] = None,
) -> PlainTextResponse:
    """What the job's training process printed (its log lines, warnings, a failure's whole traceback):
    the newest 256 KB of each attempt, copied every few seconds while it runs and once more just after it
    ends (its last lines can follow its final status by a moment). Empty before it starts."""
    found = read_log(session, job.id, attempt)
    if found is None:
        if attempt is not None and attempt > job.attempts:
            raise InvalidField("attempt", f"job {job.id} has had {job.attempts} attempts", location="query")
        return PlainTextResponse("", headers={"X-Attempt": str(attempt or job.attempts), "X-Truncated": "false"})
    text = found.text
    lines = text.splitlines(keepends=True)
    truncated = found.truncated or (tail is not None and len(lines) > tail)
    if tail is not None:
        text = "".join(lines[-tail:])
    return PlainTextResponse(text, headers={"X-Attempt": str(found.attempt), "X-Truncated": str(truncated).lower()})


@kinds_router.get("", response_model=ModelKindsPublic, dependencies=[READS])
def get_model_kinds() -> ModelKindsPublic:
    """Every model kind (the built-in ones, then those installed packages add) with its defaults (the spec a job
    of that kind runs when it gives only `model`: what the page compares a job's spec with, to mark the fields it
    chose) and its jobs' JSON Schema (what the page's form is made from)."""
    return MODEL_KINDS


MODEL_KINDS = ModelKindsPublic(  # the kinds are known at start and never change while the service runs
    models=[
        ModelKindPublic(
            model=name,
            description=" ".join((kind.spec.__doc__ or "").split()),
            package=kind.package,
            version=kind.version,
            defaults=default_job_spec(name),
            json_schema=JOB_CLASSES[name].model_json_schema(),
        )
        for name, kind in KINDS.items()
    ]
)
