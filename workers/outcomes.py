"""Recording how an attempt at a job ended. Every bad ending goes through `fail_job`.

Each function is fenced by the attempt (`Ownership`): a worker that lost its job to another
attempt changes nothing.
"""

import logging
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from app.db.artifacts import put_artifact
from app.db.jobs import Ownership, transition
from app.db.tables import Artifact, ArtifactKind, JobStatus

log = logging.getLogger(__name__)


def _drop_checkpoint(session: Session, job_id: int) -> None:
    session.execute(delete(Artifact).where(Artifact.job_id == job_id, Artifact.kind == ArtifactKind.checkpoint.value))


def fail_job(sessions: sessionmaker[Session], ownership: Ownership, message: str) -> bool:
    """Mark the attempt's job failed with a readable error; False if it was no longer this attempt's."""
    log.warning("job %s failed: %s", ownership.job_id, message)
    with sessions() as session:
        moved = transition(session, ownership.owns(), JobStatus.failed, error=message[:4000])
        if moved:
            _drop_checkpoint(session, ownership.job_id)
        session.commit()
    return bool(moved)


def succeed_job(
    sessions: sessionmaker[Session], ownership: Ownership, metrics: dict[str, Any], step: int, model: bytes | None
) -> bool:
    """The job and its model artifact in one transaction: a succeeded job always has its model."""
    with sessions() as session:
        moved = transition(session, ownership.owns(), JobStatus.succeeded, final_metrics=metrics, step=step)
        if moved:
            if model is not None:
                put_artifact(session, ownership.job_id, ArtifactKind.model, model, step)
            _drop_checkpoint(session, ownership.job_id)
        session.commit()
    return bool(moved)


def cancel_running_job(
    sessions: sessionmaker[Session], ownership: Ownership, metrics: dict[str, Any], step: int
) -> bool:
    """A cancelled job keeps the points it logged and the metrics it reached."""
    with sessions() as session:
        moved = transition(
            session, ownership.owns(), JobStatus.cancelled, [JobStatus.running], final_metrics=metrics, step=step
        )
        if moved:
            _drop_checkpoint(session, ownership.job_id)
        session.commit()
    return bool(moved)


def requeue_job(sessions: sessionmaker[Session], ownership: Ownership) -> bool:
    """Hand the job back to the queue; its next attempt resumes from its last checkpoint."""
    with sessions() as session:
        moved = transition(session, ownership.owns(), JobStatus.queued, [JobStatus.running], worker=None)
        session.commit()
    return bool(moved)
