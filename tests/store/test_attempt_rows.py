"""Attempts as rows (issue 42): every attempt at a job keeps its executor, its start and end, how it ended and how
far it got, whoever ended it; on SQLite and PostgreSQL, through the store and GET /jobs/{id}/attempts."""

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.settings import ApiSettings
from specs import parse_job_spec
from store.attempts import (
    Attempt,
    Waiting,
    attempts_of,
    claim_next,
    fail_attempt,
    hand_back,
    preempt_attempt,
    record_placement,
    record_progress,
    request_preemption,
    requeue_stale_jobs,
    start_attempt,
    succeed_attempt,
)
from store.jobs import create_job, delete_job
from store.quotas import hours_of
from store.tables import AttemptOutcome, JobAttempt, Role, utcnow
from store.unit_of_work import unit_of_work
from store.users import create_user
from tests.conftest import local_client


def claim(sessions: sessionmaker[Session], executor: str) -> Attempt:
    attempt = claim_next(sessions, executor)
    assert attempt is not None
    with unit_of_work(sessions) as session:
        start_attempt(session, attempt)
    return attempt


def progress(sessions: sessionmaker[Session], attempt: Attempt, step: int) -> None:
    with unit_of_work(sessions) as session:
        record_progress(session, attempt, step, 10.0, 1000.0)


def test_each_attempt_keeps_its_executor_its_ending_and_its_steps(
    sessions: sessionmaker[Session], tmp_path: Path, database_url: str
) -> None:
    with unit_of_work(sessions) as session:
        job_id = create_job(session, parse_job_spec({"model": "torch_mlp", "max_steps": 400}))[0].id
    first = claim(sessions, "a")
    with unit_of_work(sessions) as session:
        record_placement(session, first, {"worker": "a"})
    progress(sessions, first, 100)
    with unit_of_work(sessions) as session:
        assert hand_back(session, first)  # its executor stopped
    second = claim(sessions, "b")
    progress(sessions, second, 200)
    with unit_of_work(sessions) as session:
        assert request_preemption(session, second, Waiting(99, 50, 0, 1))
        assert preempt_attempt(session, second, 200)
    third = claim(sessions, "c")
    progress(sessions, third, 250)
    with unit_of_work(sessions) as session:  # its executor goes silent
        assert requeue_stale_jobs(session, utcnow() + timedelta(hours=1)) == ([job_id], [])
    fourth = claim(sessions, "d")
    with unit_of_work(sessions) as session:
        assert succeed_attempt(session, fourth, {"test_accuracy": 0.5}, 400, b"model")
    with sessions() as session:
        rows = attempts_of(session, job_id)
    assert [(r.number, r.executor, r.outcome, r.steps_done) for r in rows] == [
        (1, "a", AttemptOutcome.handed_back, 100),
        (2, "b", AttemptOutcome.preempted, 200),
        (3, "c", AttemptOutcome.lost_heartbeat, 250),
        (4, "d", AttemptOutcome.succeeded, 400),
    ]
    assert rows[0].placement == {"worker": "a"} and all(r.ended_at is not None for r in rows)
    assert all(r.started_at <= r.ended_at for r in rows if r.ended_at is not None)
    with local_client(create_app(ApiSettings(data_dir=tmp_path, database_url=database_url))) as client:
        listed = client.get(f"/jobs/{job_id}/attempts").json()["data"]
        assert [(a["number"], a["outcome"], a["resumed_from_step"]) for a in listed] == [
            (1, "handed_back", 0),
            (2, "preempted", 0),
            (3, "lost_heartbeat", 0),
            (4, "succeeded", 0),
        ]  # fmt: skip  (no checkpoint was written here: each resumed from the start)
        assert client.get("/jobs/999/attempts").status_code == 404
        scraped = client.get("/metrics").text
        assert (
            'cifar_attempts{outcome="preempted"} 1.0' in scraped
            and 'cifar_attempts{outcome="succeeded"} 1.0' in scraped
        )
    with unit_of_work(sessions) as session:
        delete_job(session, job_id)
    with sessions() as session:
        assert attempts_of(session, job_id) == []


def test_a_running_attempt_has_no_end_yet_and_a_timed_out_one_says_so(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        job_id = create_job(session, parse_job_spec({"model": "torch_mlp"}))[0].id
    attempt = claim(sessions, "w")
    with sessions() as session:
        (row,) = attempts_of(session, job_id)
        assert (row.outcome, row.ended_at, row.steps_done) == (None, None, None)
    with unit_of_work(sessions) as session:
        assert fail_attempt(session, attempt, "timed out", AttemptOutcome.timed_out)
    with sessions() as session:
        assert attempts_of(session, job_id)[0].outcome == AttemptOutcome.timed_out


def test_cpu_hours_count_each_attempts_running_time_not_the_wait_between_them(
    sessions: sessionmaker[Session],
) -> None:
    """A job preempted after an hour, queued two hours, then run another hour: two hours of its 2 CPUs, whatever its
    own row says of its latest attempt; the window cuts an attempt it began in; an open attempt of a job no longer
    running counts nothing."""
    now = utcnow()
    with unit_of_work(sessions) as session:
        owner = create_user(session, "mia", Role.member)[0].id
        job = create_job(session, parse_job_spec({"model": "torch_mlp", "cpus": 2}), owner_id=owner)[0]
        job.status, job.started_at, job.finished_at = "succeeded", now - timedelta(hours=2), now - timedelta(hours=1)
        session.add_all([
            JobAttempt(job_id=job.id, number=1, started_at=now - timedelta(hours=5), ended_at=now - timedelta(hours=4),
                       outcome=AttemptOutcome.preempted.value),
            JobAttempt(job_id=job.id, number=2, started_at=now - timedelta(hours=2), ended_at=now - timedelta(hours=1),
                       outcome=AttemptOutcome.succeeded.value),
        ])  # fmt: skip
        queued = create_job(session, parse_job_spec({"model": "torch_mlp"}), owner_id=owner)[0]
        session.add(JobAttempt(job_id=queued.id, number=1, started_at=now - timedelta(hours=3)))  # never closed
    with sessions() as session:
        cpu, gpu = hours_of(session, owner, now - timedelta(days=7))
        assert cpu == pytest.approx(4.0, abs=0.01) and gpu == 0
        assert hours_of(session, owner, now - timedelta(hours=4, minutes=30))[0] == pytest.approx(3.0, abs=0.01)
