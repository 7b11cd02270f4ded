"""Counts and rates over the jobs table, for monitoring (Prometheus)."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.tables import AttemptOutcome, Job, JobAttempt, JobStatus


@dataclass(frozen=True)
class RunningJob:
    id: int
    model: str
    worker: str | None
    steps_per_second: float | None
    images_per_second: float | None
    heartbeat_at: datetime | None


def jobs_by_status(session: Session) -> dict[str, int]:
    """Every status with its job count (0 for none)."""
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status))
    counts = {status: int(count) for status, count in rows}
    return {status.value: counts.get(status.value, 0) for status in JobStatus}


def attempts_by_outcome(session: Session) -> dict[str, int]:
    """The kept jobs' attempts by how they ended (`running` for those that have not), 0 for none."""
    rows = session.execute(select(JobAttempt.outcome, func.count()).group_by(JobAttempt.outcome))
    counts = {outcome or "running": int(count) for outcome, count in rows}
    return {name: counts.get(name, 0) for name in ["running", *(outcome.value for outcome in AttemptOutcome)]}


def running_jobs(session: Session) -> list[RunningJob]:
    rows = session.execute(
        select(Job.id, Job.model, Job.worker, Job.steps_per_second, Job.images_per_second, Job.heartbeat_at).where(
            Job.status == JobStatus.running.value
        )
    )
    return [RunningJob(*row) for row in rows]
