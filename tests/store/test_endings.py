"""Every way a job ends drops its checkpoint, in the one transition function: a finished job never
resumes, and a checkpoint is as large as the model and its optimizer (38.6 MB for the report's MLP)."""

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from specs import parse_job_spec
from store.artifacts import put_artifact
from store.attempts import Attempt, claim_next, hand_back, requeue_stale_jobs
from store.jobs import create_job, find_job, request_cancel
from store.tables import Artifact, ArtifactKind, utcnow
from store.unit_of_work import unit_of_work


def running_job_with_a_checkpoint(sessions: sessionmaker[Session], max_attempts: int = 3) -> Attempt:
    with sessions() as session:
        create_job(session, parse_job_spec({"model": "torch_mlp", "max_attempts": max_attempts}))
        session.commit()
        attempt = claim_next(sessions, "w")
        assert attempt is not None
        put_artifact(session, attempt.job_id, ArtifactKind.checkpoint, b"state" * 1000, 500)
        session.commit()
    return attempt


def checkpoints(sessions: sessionmaker[Session], job_id: int) -> int:
    with sessions() as session:
        where = (Artifact.job_id == job_id) & (Artifact.kind == ArtifactKind.checkpoint.value)
        return session.scalar(select(func.count()).select_from(Artifact).where(where)) or 0


def test_a_job_handed_back_then_cancelled_while_queued_drops_its_checkpoint(sessions: sessionmaker[Session]) -> None:
    attempt = running_job_with_a_checkpoint(sessions)
    with unit_of_work(sessions) as session:
        assert hand_back(session, attempt)
    assert checkpoints(sessions, attempt.job_id) == 1  # queued again: it resumes from it
    with sessions() as session:
        assert request_cancel(session, attempt.job_id).status == "cancelled"
        session.commit()
    assert checkpoints(sessions, attempt.job_id) == 0


def test_a_job_failed_by_the_stale_heartbeat_reaper_drops_its_checkpoint(sessions: sessionmaker[Session]) -> None:
    attempt = running_job_with_a_checkpoint(sessions, max_attempts=1)
    with sessions() as session:
        requeued, failed = requeue_stale_jobs(session, utcnow() + timedelta(hours=1))
        session.commit()
        assert (requeued, failed) == ([], [attempt.job_id])
        assert "max_attempts reached" in (find_job(session, attempt.job_id).error or "")
    assert checkpoints(sessions, attempt.job_id) == 0


def test_a_lost_job_requeued_by_the_reaper_keeps_its_checkpoint(sessions: sessionmaker[Session]) -> None:
    attempt = running_job_with_a_checkpoint(sessions)
    with sessions() as session:
        assert requeue_stale_jobs(session, utcnow() + timedelta(hours=1)) == ([attempt.job_id], [])
        session.commit()
    assert checkpoints(sessions, attempt.job_id) == 1
