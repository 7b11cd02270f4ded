"""Fair share in the claim: among the jobs of the highest priority, the owner who started the fewest jobs lately
goes first, so one person's long queue does not hold back another's; on SQLite and PostgreSQL."""

from sqlalchemy.orm import Session, sessionmaker

from models.kinds import parse_spec
from store.attempts import claim_next, succeed_attempt
from store.jobs import create_job
from store.tables import Role
from store.users import create_user

SPEC = parse_spec({"model": "numpy_mlp", "max_steps": 5})


def test_a_late_small_queue_is_not_held_back_by_an_early_long_one(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        alice, _ = create_user(session, "alice", Role.member)
        bob, _ = create_user(session, "bob", Role.member)
        a_jobs = [create_job(session, SPEC, owner_id=alice.id)[0].id for _ in range(50)]
        b_jobs = [create_job(session, SPEC, owner_id=bob.id)[0].id for _ in range(5)]
        urgent = create_job(session, parse_spec({**SPEC.model_dump(), "priority": 5}), owner_id=alice.id)[0].id
    started: list[int] = []
    while len(started) < 20:  # one worker: a job at a time, each ends before the next claim
        with sessions() as session:
            attempt = claim_next(session, "w")
        assert attempt is not None
        started.append(attempt.job_id)
        assert succeed_attempt(sessions, attempt, {"test_accuracy": 0.5}, 5, b"model")
    assert started[0] == urgent  # priority first, whatever the owner's usage
    tenth_of_alice = started.index(a_jobs[9])
    assert all(started.index(job) < tenth_of_alice for job in b_jobs), started
    # alice has started one (the urgent one): bob's first, then turn about
    assert started[1:11] == [b_jobs[0], a_jobs[0], b_jobs[1], a_jobs[1], b_jobs[2], a_jobs[2], b_jobs[3], a_jobs[3],
                             b_jobs[4], a_jobs[4]]  # fmt: skip
    assert started[11:] == a_jobs[5:14]  # then alice's, in order


def test_without_owners_the_order_is_priority_then_age(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        jobs = [create_job(session, SPEC)[0].id for _ in range(4)]
    with sessions() as session:
        claimed = [claim_next(session, "w") for _ in range(4)]
    assert [attempt.job_id for attempt in claimed if attempt is not None] == jobs
