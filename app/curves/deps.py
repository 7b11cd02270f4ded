"""The curve feature's typed dependencies: this API process's curve reader and event feeds."""

from typing import Annotated

from fastapi import Depends, Request

from app.curves.events import JobEvents
from app.curves.views import JobCurves


async def get_job_curves(request: Request) -> JobCurves:
    return request.app.state.curves  # type: ignore[no-any-return]


async def get_job_events(request: Request) -> JobEvents:
    return request.app.state.events  # type: ignore[no-any-return]


CurvesDep = Annotated[JobCurves, Depends(get_job_curves)]
EventsDep = Annotated[JobEvents, Depends(get_job_events)]
