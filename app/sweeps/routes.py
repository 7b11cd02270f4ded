"""/sweeps: hyperparameter searches whose trials are ordinary jobs, with early stopping."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response

from app.access.auth import audit
from app.access.permissions import READS, ChangeableSweepId, CreatorDep, ReadableSweepId, owned_by
from app.curves.plots import MEDIA_TYPES, ImageFormat
from app.http.deps import BulkDep, SessionDep, SessionFactoryDep, UnitOfWorkDep
from app.http.error_schemas import ErrorMessage
from app.jobs.service import check_init_from_job
from app.sweeps.schemas import SweepImportancesPublic, SweepPlanPublic, SweepPublic, SweepsPublic
from app.sweeps.service import sweep_importances, sweep_plot_image, sweep_public, sweeps_page
from app.sweeps.sweep_plan import sweep_plan
from app.users.quotas import check_submission
from specs import parse_job_spec
from store.sweeps import cancel_sweep, create_sweep
from sweeps.spec import SweepSpec

router = APIRouter(prefix="/sweeps", tags=["sweeps"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorMessage, "description": "No sweep with this id."}}


@router.post(
    "",
    status_code=201,
    response_model=SweepPublic | SweepPlanPublic,
    responses={
        200: {"model": SweepPlanPublic, "description": "With `dry_run=true`: the plan."},
        201: {"headers": {"Location": {"description": "/sweeps/{id}", "schema": {"type": "string"}}}},
    },
)
def submit_sweep(
    request: Request,
    principal: CreatorDep,
    spec: Annotated[SweepSpec, Body()],
    session: UnitOfWorkDep,
    response: Response,
    dry_run: Annotated[
        bool, Query(description="Store nothing: answer the sweep's plan (trials, steps, expected wall time).")
    ] = False,
    probe: Annotated[
        bool, Query(description="With `dry_run`: when no earlier job of the base's shape ran, time a few steps.")
    ] = True,
) -> SweepPublic | SweepPlanPublic:
    """Start a search: trials are jobs built from `base` with the searched fields set, created up to
    `max_concurrent` at a time; with `early_stopping`, a trial behind the others at a rung stops
    (status `stopped_early`, keeping its points and model). With `dry_run=true` nothing is stored: the answer
    is the sweep's plan (200)."""
    base = parse_job_spec(spec.base_spec())
    check_init_from_job(session, base, owned_by(request))
    settings = request.app.state.settings
    if dry_run:
        request.app.state.plan_rate.check(settings, principal)
        response.status_code = 200
        return sweep_plan(session, spec, request.app.state.prober, settings.executor_alive_seconds, probe)
    check_submission(
        session,
        settings,
        request.app.state.recent_hours,
        principal,
        base.priority,
        base.gpus,
        jobs=0,
        preemptible=base.preemptible,
    )  # its trials: no rate
    sweep = create_sweep(session, spec.name, spec.model_dump(mode="json"), principal.user_id)
    audit(request, session, "sweep.create", f"sweep {sweep.id}", {"name": spec.name})
    response.headers["Location"] = f"/sweeps/{sweep.id}"
    return sweep_public(session, sweep.id)


@router.get("", response_model=SweepsPublic, dependencies=[READS])
def get_sweeps(
    request: Request,
    session: SessionDep,
    mine: Annotated[bool, Query(description="Only the sweeps you started (with VISIBILITY=own, always).")] = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> SweepsPublic:
    """Sweeps, newest first, each with its best trial so far."""
    return sweeps_page(session, limit, offset, owned_by(request, mine))


@router.get("/{sweep_id}", response_model=SweepPublic, responses=NOT_FOUND)
def get_sweep(session: SessionDep, sweep_id: ReadableSweepId) -> SweepPublic:
    """The leaderboard: every trial (its job, parameters, status, objective) best first, and the steps spent."""
    return sweep_public(session, sweep_id)


@router.post(
    "/{sweep_id}/cancel",
    response_model=SweepPublic,
    responses={**NOT_FOUND, 409: {"model": ErrorMessage, "description": "The sweep has already ended."}},
)
def cancel(request: Request, session: UnitOfWorkDep, sweep_id: ChangeableSweepId) -> SweepPublic:
    """Create no more trials, and cancel the queued and running ones (they keep their points)."""
    cancel_sweep(session, sweep_id)
    audit(request, session, "sweep.cancel", f"sweep {sweep_id}")
    return sweep_public(session, sweep_id)


@router.get("/{sweep_id}/importances", response_model=SweepImportancesPublic, responses=NOT_FOUND)
async def get_sweep_importances(
    sessions: SessionFactoryDep, bulk: BulkDep, sweep_id: ReadableSweepId
) -> SweepImportancesPublic:
    """Which searched fields mattered: each one's share of the objective's variance over the trials that ran to
    their end (Optuna's fANOVA importances, seeded), largest first."""

    def compute() -> SweepImportancesPublic:
        with sessions() as session:
            return sweep_importances(session, sweep_id)

    return await bulk.run(compute)


@router.get(
    "/{sweep_id}/plot.{image_format}",
    response_class=Response,
    responses={**NOT_FOUND, 200: {"content": {"image/png": {}, "image/svg+xml": {}}, "description": "The plot."}},
)
async def get_sweep_plot(
    sessions: SessionFactoryDep,
    bulk: BulkDep,
    sweep_id: ReadableSweepId,
    image_format: ImageFormat,
    width: Annotated[int, Query(ge=200, le=4000)] = 1100,
    height: Annotated[int, Query(ge=150, le=3000)] = 450,
) -> Response:
    """Each trial's objective (early-stopped ones marked) and the test curves of the best three."""

    def draw() -> bytes:
        with sessions() as session:
            return sweep_plot_image(session, sweep_id, width, height, image_format)

    image = await bulk.run(draw)
    return Response(image, media_type=MEDIA_TYPES[image_format], headers={"Cache-Control": "no-store"})
