"""What a plan reads of the queue: the jobs ahead of a new one, the running ones, and earlier runs of a model."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.tables import Job, JobStatus


class FinishedRun(NamedTuple):
    spec: dict[str, Any]
    final_metrics: dict[str, Any] | None
    started_at: datetime | None
    finished_at: datetime | None


def succeeded_runs(session: Session, model: str, limit: int) -> list[FinishedRun]:
    """The newest `limit` succeeded jobs of the model kind, newest first."""
    rows = session.execute(
        select(Job.spec, Job.final_metrics, Job.started_at, Job.finished_at)
        .where(Job.model == model, Job.status == JobStatus.succeeded.value)
        .order_by(Job.id.desc())
        .limit(limit)
    )
    return [FinishedRun(*row) for row in rows]


def _queued_at_or_above(priority: int) -> Any:
    return (Job.status == JobStatus.queued.value) & (Job.priority >= priority)


def count_queued_ahead(session: Session, priority: int) -> int:
    """How many queued jobs a new job of `priority` waits behind (theirs is as high or higher)."""
    return session.scalar(select(func.count()).select_from(Job).where(_queued_at_or_above(priority))) or 0


def queued_ahead(session: Session, priority: int) -> Sequence[Job]:
    return session.scalars(select(Job).where(_queued_at_or_above(priority))).all()


def running_jobs(session: Session) -> Sequence[Job]:
    return session.scalars(select(Job).where(Job.status == JobStatus.running.value)).all()
