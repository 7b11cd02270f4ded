"""Hardening of the store: pending cancels survive hand-backs, graceful hand-backs cost no attempt,
point ids are 64-bit. Each on the real SQLite file or the test PostgreSQL server."""

from datetime import timedelta

import pytest
from sqlalchemy import Engine, event, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from specs import parse_job_spec
from store.attempts import Attempt, claim_next, hand_back, requeue_stale_jobs
from store.errors import JobNotFinished
from store.jobs import create_job, delete_job, find_job, request_cancel
from store.tables import MetricPoint, utcnow
from store.unit_of_work import unit_of_work


def new_job(sessions: sessionmaker[Session], **fields: object) -> int:
    with unit_of_work(sessions) as session:
        return create_job(session, parse_job_spec({"model": "torch_mlp", **fields}))[0].id


def claim(sessions: sessionmaker[Session]) -> Attempt:
    attempt = claim_next(sessions, "w")
    assert attempt is not None
    return attempt


def reap_everything(sessions: sessionmaker[Session]) -> tuple[list[int], list[int]]:
    """As if every running job's heartbeat were stale."""
    with unit_of_work(sessions) as session:
        return requeue_stale_jobs(session, utcnow() + timedelta(hours=1))


def status(sessions: sessionmaker[Session], job_id: int) -> str:
    with sessions() as session:
        return find_job(session, job_id).status


def test_a_cancel_pending_at_a_graceful_hand_back_cancels_the_job(sessions: sessionmaker[Session]) -> None:
    job_id = new_job(sessions)
    attempt = claim(sessions)
    with sessions() as session:
        request_cancel(session, job_id)
        session.commit()
    with unit_of_work(sessions) as session:
        assert hand_back(session, attempt)
    assert status(sessions, job_id) == "cancelled"  # not queued: claimed again it would run to the end


def test_a_cancel_pending_when_the_worker_is_lost_cancels_the_job(sessions: sessionmaker[Session]) -> None:
    job_id = new_job(sessions)
    claim(sessions)
    with sessions() as session:
        request_cancel(session, job_id)
        session.commit()
    requeued, failed = reap_everything(sessions)
    assert (requeued, failed) == ([], []) and status(sessions, job_id) == "cancelled"
    assert claim_next(sessions, "w") is None


def test_graceful_hand_backs_do_not_use_up_max_attempts(sessions: sessionmaker[Session]) -> None:
    job_id = new_job(sessions, max_attempts=2)
    for _ in range(3):  # three workers stopped on purpose (deploys, Ctrl-C)
        with unit_of_work(sessions) as session:
            assert hand_back(session, claim(sessions))
    claim(sessions)
    assert reap_everything(sessions) == ([job_id], [])  # the first lost attempt: back in the queue
    claim(sessions)
    assert reap_everything(sessions) == ([], [job_id])  # the second: max_attempts=2 lost attempts
    with sessions() as session:
        job = find_job(session, job_id)
        assert (job.status, job.attempts, job.handed_back) == ("failed", 5, 3)


def test_point_ids_are_64_bit(sessions: sessionmaker[Session]) -> None:
    job_id = new_job(sessions)
    big = 2**40
    with sessions() as session:
        session.execute(insert(MetricPoint), [{"id": big, "job_id": job_id, "step": 1, "split": "train",
                                               "loss": 1.0, "accuracy": 0.5}])  # fmt: skip
        session.commit()
        assert session.scalar(select(MetricPoint.id).where(MetricPoint.job_id == job_id)) == big


def test_deleting_a_running_job_is_refused_before_any_of_its_rows_is_touched(
    sessions: sessionmaker[Session], engine: Engine
) -> None:
    """Issue 40, finding 9: `delete_job` deleted a running job's points, logs and checkpoint before it looked at
    its status (and rolled back): writes, and locks held, against the job's own training process."""
    job_id = new_job(sessions)
    claim(sessions)
    with sessions() as session:
        session.execute(insert(MetricPoint).values(job_id=job_id, step=1, split="train", loss=1.0, accuracy=0.1))
        session.commit()
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with sessions() as session, pytest.raises(JobNotFinished, match="is running: cancel it first"):
            delete_job(session, job_id)
            session.commit()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert "DELETE" not in statements and "UPDATE" not in statements, statements
    with sessions() as session:
        assert session.scalar(select(func.count()).where(MetricPoint.job_id == job_id)) == 1
