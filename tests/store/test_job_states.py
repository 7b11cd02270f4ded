"""The job state machine and the atomic claim, on a real SQLite file."""

import threading

import pytest
from sqlalchemy.orm import Session, sessionmaker

from specs import parse_job_spec
from store.attempts import Attempt, claim_next
from store.errors import JobFinished
from store.jobs import create_job, find_job, request_cancel
from store.points import add_points, delete_points_after, read_points
from store.tables import Job, JobStatus
from store.transitions import transition
from tests.conftest import new_job


def status_of(sessions: sessionmaker[Session], job_id: int) -> str:
    with sessions() as session:
        return find_job(session, job_id).status


def test_transitions_outside_the_table_are_refused(sessions: sessionmaker[Session]) -> None:
    job_id = new_job(sessions)
    with sessions() as session:
        assert transition(session, Job.id == job_id, JobStatus.succeeded) == []  # queued -> succeeded: no
        assert transition(session, Job.id == job_id, JobStatus.running) == [(job_id, 0)]
        assert transition(session, Job.id == job_id, JobStatus.succeeded) == [(job_id, 0)]
        assert transition(session, Job.id == job_id, JobStatus.queued) == []  # finished is final
        session.commit()
    assert status_of(sessions, job_id) == "succeeded"


def test_claim_takes_oldest_first_and_only_queued(sessions: sessionmaker[Session]) -> None:
    first, second = new_job(sessions), new_job(sessions)
    with sessions() as session:
        assert claim_next(sessions, "a") == Attempt(first, 1)
        assert claim_next(sessions, "b") == Attempt(second, 1)
        assert claim_next(sessions, "c") is None
        job = find_job(session, first)
        assert (job.status, job.worker, job.attempts) == ("running", "a", 1)


def test_concurrent_claims_never_share_a_job(sessions: sessionmaker[Session]) -> None:
    job_ids = {new_job(sessions) for _ in range(40)}
    claimed: list[int] = []
    lock = threading.Lock()

    def claim_all(name: str) -> None:
        while True:
            taken = claim_next(sessions, name)
            if taken is None:
                return
            with lock:
                claimed.append(taken.job_id)

    threads = [threading.Thread(target=claim_all, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(job_ids)  # each exactly once


def test_cancel_flags_running_and_refuses_finished(sessions: sessionmaker[Session]) -> None:
    job_id = new_job(sessions)
    with sessions() as session:
        claim_next(sessions, "w")
        assert request_cancel(session, job_id).cancel_requested is True
        session.commit()
        assert find_job(session, job_id).status == "running"
        transition(session, Job.id == job_id, JobStatus.cancelled)
        session.commit()
        with pytest.raises(JobFinished, match=r"already ended \(cancelled\)"):
            request_cancel(session, job_id)
            session.commit()


def test_points_come_back_in_step_order_and_can_be_rolled_back(sessions: sessionmaker[Session]) -> None:
    job_id = new_job(sessions)
    with sessions() as session:
        add_points(session, job_id, [(20, "test", 1.0, 0.5), (10, "train", 2.0, 0.1), (20, "train", 1.5, 0.3)])
        session.commit()
        assert [(p[0], p[1]) for p in read_points(session, job_id)] == [(10, "train"), (20, "train"), (20, "test")]
        assert [p[0] for p in read_points(session, job_id, since=10)] == [20, 20]
        delete_points_after(session, job_id, 10)
        session.commit()
        assert [p[0] for p in read_points(session, job_id)] == [10]


def test_higher_priority_is_claimed_first_then_oldest(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        ids = [create_job(session, parse_job_spec({"model": "torch_mlp", "priority": p}))[0].id for p in (0, 5, 5, -1)]
        session.commit()
        order = [claim_next(sessions, "w") for _ in ids]
    assert [o.job_id for o in order if o] == [ids[1], ids[2], ids[0], ids[3]]
