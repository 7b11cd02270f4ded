"""What a plan reads of the queue: the jobs ahead of a new one, the running ones, and earlier runs of a model."""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.tables import Job, JobAttempt, JobStatus


class FinishedRun(NamedTuple):
    spec: dict[str, Any]
    final_metrics: dict[str, Any] | None
    running_seconds: float  # its attempts' time together (a preempted job's waits between them left out)
    attempts: int


def succeeded_runs(session: Session, model: str, limit: int) -> list[FinishedRun]:
    """The newest `limit` succeeded jobs of the model kind, newest first, with their attempts' running time read
    from their attempt rows (two queries)."""
    jobs = session.execute(
        select(Job.id, Job.spec, Job.final_metrics)
        .where(Job.model == model, Job.status == JobStatus.succeeded.value)
        .order_by(Job.id.desc())
        .limit(limit)
    ).all()
    seconds: dict[int, float] = defaultdict(float)
    attempts: dict[int, int] = defaultdict(int)
    for job_id, started, ended in session.execute(
        select(JobAttempt.job_id, JobAttempt.started_at, JobAttempt.ended_at).where(
            JobAttempt.job_id.in_([job.id for job in jobs])
        )
    ):
        if ended is not None:  # a succeeded job's attempts have all ended
            seconds[job_id] += (ended - started).total_seconds()
            attempts[job_id] += 1
    return [FinishedRun(job.spec, job.final_metrics, seconds[job.id], attempts[job.id]) for job in jobs
            if attempts[job.id]]  # fmt: skip


def _queued_at_or_above(priority: int) -> Any:
    return (Job.status == JobStatus.queued.value) & (Job.priority >= priority)


def count_queued_ahead(session: Session, priority: int) -> int:
    """How many queued jobs a new job of `priority` waits behind (theirs is as high or higher)."""
    return session.scalar(select(func.count()).select_from(Job).where(_queued_at_or_above(priority))) or 0


def queued_ahead(session: Session, priority: int) -> Sequence[Job]:
    return session.scalars(select(Job).where(_queued_at_or_above(priority))).all()


def running_jobs(session: Session) -> Sequence[Job]:
    return session.scalars(select(Job).where(Job.status == JobStatus.running.value)).all()
