"""Typed dependencies shared by the routes."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from app.db.jobs import get_job
from app.db.tables import Job

MAX_ID = 2**63 - 1


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


JobId = Annotated[int, Path(ge=1, le=MAX_ID, description="The job's id.")]


def job_or_404(job_id: JobId, session: SessionDep) -> Job:
    return get_job(session, job_id)  # raises JobNotFound -> 404


JobDep = Annotated[Job, Depends(job_or_404)]
