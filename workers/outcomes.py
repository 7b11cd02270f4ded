"""Recording how a job ended. Every bad ending goes through `fail_job`."""

import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.db.artifacts import put_artifact
from app.db.jobs import transition
from app.db.points import delete_points_after
from app.db.tables import ArtifactKind, Job, JobStatus

log = logging.getLogger(__name__)


def fail_job(sessions: sessionmaker[Session], job_id: int, message: str) -> bool:
    """Mark a running job failed with a readable error; False if it was no longer running."""
    log.warning("job %s failed: %s", job_id, message)
    with sessions() as session:
        moved = transition(session, Job.id == job_id, JobStatus.failed, error=message[:4000])
        session.commit()
    return bool(moved)


def succeed_job(
    sessions: sessionmaker[Session], job_id: int, metrics: dict[str, Any], step: int, model: bytes | None
) -> bool:
    """The job and its model artifact in one transaction: a succeeded job always has its model."""
    with sessions() as session:
        moved = transition(session, Job.id == job_id, JobStatus.succeeded, final_metrics=metrics, step=step)
        if moved and model is not None:
            put_artifact(session, job_id, ArtifactKind.model, model, step)
        session.commit()
    return bool(moved)


def cancel_running_job(sessions: sessionmaker[Session], job_id: int, metrics: dict[str, Any], step: int) -> bool:
    """A cancelled job keeps the points it logged and the metrics it reached."""
    with sessions() as session:
        moved = transition(
            session, Job.id == job_id, JobStatus.cancelled, [JobStatus.running], final_metrics=metrics, step=step
        )
        session.commit()
    return bool(moved)


def requeue_job(sessions: sessionmaker[Session], job_id: int, resume_step: int = 0) -> bool:
    """Hand a running job back to the queue; points after `resume_step` will be logged again."""
    with sessions() as session:
        moved = transition(
            session, Job.id == job_id, JobStatus.queued, [JobStatus.running], worker=None, step=resume_step
        )
        if moved:
            delete_points_after(session, job_id, resume_step)
        session.commit()
    return bool(moved)
