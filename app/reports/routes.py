"""/reports/assignment: the assignment report's runs submitted as jobs, and the report regenerated from them."""

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel, Field

from app.access.auth import audit
from app.access.permissions import READS, CreatorDep, owned_by
from app.curves.deps import CurvesDep
from app.curves.plots import Labelled, job_plot
from app.http.deps import SessionDep, UnitOfWorkDep
from app.http.error_schemas import ErrorMessage
from app.http.refusals import InvalidField
from app.reports.page import html_page, markdown, report_rows
from app.reports.runs import CONVNET_STEPS, RESNET_STEPS, find_run_jobs, report_runs, submit_report_runs
from app.users.quotas import check_submission, quotas_apply

router = APIRouter(prefix="/reports/assignment", tags=["reports"])


class ReportRequest(BaseModel):
    model_config = {"extra": "forbid"}
    convnet_max_steps: int = Field(
        CONVNET_STEPS, ge=1, le=CONVNET_STEPS, description="Cut the ConvNet run short (the report's: 5000)."
    )
    resnet18_max_steps: int = Field(
        RESNET_STEPS, ge=1, le=RESNET_STEPS, description="Cut the ResNet18 run short (the report's: 5000)."
    )


class ReportRunPublic(BaseModel):
    figure: str = Field(description="The report's figure number (1-6), or the name of a run beyond its figures.")
    in_report: bool = Field(description="False for the runs beyond the report's figures (its sections 2.2 and 3).")
    title: str
    job_id: int
    reused: bool = Field(description="An identical earlier job (succeeded, or still on its way) stands for the run.")
    status: str
    note: str | None


class ReportSubmitted(BaseModel):
    runs: list[ReportRunPublic]
    report_url: str


@router.post("", response_model=ReportSubmitted)
def submit_report(
    request: Request,
    principal: CreatorDep,
    session: UnitOfWorkDep,
    options: Annotated[ReportRequest | None, Body()] = None,
) -> ReportSubmitted:
    """Submit the report's runs with the report's settings, reusing any identical job that succeeded
    or is still queued or running; ResNet18 starts from ImageNet weights when the weights file is there."""
    options = options or ReportRequest()
    runs = report_runs(request.app.state.settings.data_dir, options.convnet_max_steps, options.resnet18_max_steps)
    if quotas_apply(principal):
        new_jobs = len(runs) - len(find_run_jobs(session, runs, owned_by=owned_by(request)))
        state = request.app.state
        check_submission(session, state.settings, state.recent_hours, principal, 0, 0.0, jobs=new_jobs)
    submitted = submit_report_runs(session, runs, principal.user_id, owned_by(request))
    for created in (s for s in submitted if not s.reused):
        audit(request, session, "job.create", f"job {created.job_id}", {"report_figure": created.run.figure})
    return ReportSubmitted(
        runs=[
            ReportRunPublic(
                figure=s.run.figure,
                in_report=s.run.in_report,
                title=s.run.title,
                job_id=s.job_id,
                reused=s.reused,
                status=s.status,
                note="; ".join(n for n in (s.run.note, s.run.steps_note(int(s.run.spec.get("max_steps", 0)))) if n)
                or None,
            )
            for s in submitted
        ],
        report_url="/reports/assignment",
    )


@router.get(
    "",
    response_class=Response,  # errors stay JSON; the 200 is HTML or Markdown
    responses={200: {"content": {"text/html": {}, "text/markdown": {}}, "description": "The report."}},
    dependencies=[READS],
)
def get_report(
    request: Request,
    session: SessionDep,
    format: Annotated[Literal["html", "md"], Query(description="`md`: the same report as Markdown.")] = "html",
    figure_prefix: Annotated[
        str,
        Query(max_length=200, pattern=r"^[A-Za-z0-9_./-]*$", description="Markdown only: where its figures are."),
    ] = "/reports/assignment/figures/",
) -> Response:
    """The report regenerated from its jobs: the report's accuracy beside this service's, steps, wall
    time, and a figure per run (runs still training show their curve so far)."""
    runs = report_runs(request.app.state.settings.data_dir, CONVNET_STEPS, RESNET_STEPS)
    rows = report_rows(session, runs, owned_by(request))
    if format == "md":
        return PlainTextResponse(markdown(rows, figure_prefix), media_type="text/markdown; charset=utf-8")
    return HTMLResponse(html_page(rows), headers={"Cache-Control": "no-store"})


@router.get(
    "/figures/figure-{figure}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 404: {"model": ErrorMessage}},
    dependencies=[READS],
)
def get_figure(
    request: Request,
    session: SessionDep,
    curves: CurvesDep,
    figure: Annotated[
        str,
        Path(pattern=r"^[a-z0-9-]{1,20}$", description="The report's 1 ... 6, or a run beyond them (`tanh-wide`, ...)"),
    ],
) -> Response:
    """One run's figure: train and test loss and accuracy against step."""
    runs = {run.figure: run for run in report_runs(request.app.state.settings.data_dir, CONVNET_STEPS, RESNET_STEPS)}
    run = runs.get(figure)
    if run is None:
        raise InvalidField("figure", f"the report's runs are {', '.join(runs)}", location="path")
    job = find_run_jobs(session, [run], exact_steps=False, reusable_only=False, owned_by=owned_by(request)).get(figure)
    if job is None:
        raise InvalidField("figure", f"figure {figure}'s run has no job yet: POST /reports/assignment", location="path")
    labelled = Labelled(curves.view(job.id), f"figure {figure}", job.model)
    return Response(job_plot(labelled, 1000, 400, "png"), media_type="image/png", headers={"Cache-Control": "no-store"})
