"""Fair share in the claim: among the jobs of the highest priority, the owner who started the fewest jobs lately
goes first, so one person's long queue does not hold back another's; on SQLite and PostgreSQL."""

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.kinds.common import SPEC_VERSION
from specs import parse_job_spec
from store.attempts import Attempt, claim_next, succeed_attempt
from store.executors import alive_since, register_executor, waiting_reason
from store.jobs import create_job, find_job
from store.tables import Job, Role
from store.unit_of_work import unit_of_work
from store.users import create_user, set_quotas

SPEC = parse_job_spec({"model": "numpy_mlp", "max_steps": 5})


def test_a_late_small_queue_is_not_held_back_by_an_early_long_one(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        alice, _ = create_user(session, "alice", Role.member)
        session.commit()
        bob, _ = create_user(session, "bob", Role.member)
        session.commit()
        a_jobs = [create_job(session, SPEC, owner_id=alice.id)[0].id for _ in range(50)]
        session.commit()
        b_jobs = [create_job(session, SPEC, owner_id=bob.id)[0].id for _ in range(5)]
        session.commit()
        urgent = create_job(session, parse_job_spec({**SPEC.model_dump(), "priority": 5}), owner_id=alice.id)[0].id
        session.commit()
    started: list[int] = []
    while len(started) < 20:  # one worker: a job at a time, each ends before the next claim
        attempt = claim_next(sessions, "w")
        assert attempt is not None
        started.append(attempt.job_id)
        with unit_of_work(sessions) as session:
            assert succeed_attempt(session, attempt, {"test_accuracy": 0.5}, 5, b"model")
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
        session.commit()
    claimed = [claim_next(sessions, "w") for _ in range(4)]
    assert [attempt.job_id for attempt in claimed if attempt is not None] == jobs


def test_a_member_at_their_running_cap_waits_while_others_and_admins_go_on(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        alice, _ = create_user(session, "alice", Role.member)
        session.commit()
        bob, _ = create_user(session, "bob", Role.member)
        session.commit()
        root, _ = create_user(session, "root", Role.admin)
        session.commit()
        set_quotas(session, bob.id, {"running_jobs": 1})
        session.commit()
        a_jobs = [create_job(session, SPEC, owner_id=alice.id)[0].id for _ in range(4)]
        session.commit()
        b_jobs = [create_job(session, SPEC, owner_id=bob.id)[0].id for _ in range(3)]
        session.commit()
        r_jobs = [create_job(session, SPEC, owner_id=root.id)[0].id for _ in range(3)]
        session.commit()

    def claim() -> int | None:
        attempt = claim_next(sessions, "w", running_cap=2)
        return None if attempt is None else attempt.job_id

    claimed = [claim() for _ in range(9)]  # nothing ends: alice stops at the default cap, bob at his own
    assert sorted(job for job in claimed if job is not None) == sorted(a_jobs[:2] + b_jobs[:1] + r_jobs)
    assert claimed[-3:] == [None, None, None]
    with sessions() as session:
        # a live worker that could take the job, were it not for its owner's cap
        register_executor(session, "w", 0, 4, SPEC_VERSION)
        session.commit()
        waiting = find_job(session, a_jobs[2])
        reason = waiting_reason(session, waiting, alive_since(60), running_cap=2)
        assert reason == ("quota running_jobs: its owner has 2 of 2 jobs running; it starts when one of them ends "
                          "(other users' jobs go first meanwhile)")  # fmt: skip
        assert waiting_reason(session, find_job(session, b_jobs[1]), alive_since(60), running_cap=2) == (
            "quota running_jobs: its owner has 1 of 1 jobs running; it starts when one of them ends "
            "(other users' jobs go first meanwhile)"
        )
    with sessions() as session:
        running = list(session.scalars(select(Job).where(Job.id == a_jobs[0])))
        attempt = Attempt(running[0].id, running[0].attempts)
    with unit_of_work(sessions) as session:
        assert succeed_attempt(session, attempt, {"test_accuracy": 0.5}, 5, b"model")
    assert claim() == a_jobs[2]  # one of alice's ended: her next starts
    assert claim() is None


def test_a_capped_owners_higher_priority_does_not_keep_others_jobs_from_starting(
    sessions: sessionmaker[Session],
) -> None:
    """Issue 40, finding 3: alice at her cap of 1 with two priority-50 jobs, bob's priority-0 job: a second
    worker claimed nothing (the claim took priority 50 first, then dropped alice at her cap)."""
    with sessions() as session:
        alice, _ = create_user(session, "alice", Role.member)
        session.commit()
        bob, _ = create_user(session, "bob", Role.member)
        session.commit()
        set_quotas(session, alice.id, {"running_jobs": 1})
        session.commit()
        urgent = [create_job(session, SPEC.model_copy(update={"priority": 50}), owner_id=alice.id)[0].id
                  for _ in range(2)]  # fmt: skip
        session.commit()
        bobs = create_job(session, SPEC, owner_id=bob.id)[0].id
        session.commit()
    first, second, third = (claim_next(sessions, f"w{i}") for i in range(3))
    assert first is not None and first.job_id == urgent[0]
    assert second is not None and second.job_id == bobs  # alice is at her cap: bob's goes, at its lower priority
    assert third is None
    with sessions() as session:
        register_executor(session, "w", 0, 4, SPEC_VERSION)
        session.commit()
        assert "quota running_jobs: its owner has 1 of 1" in (
            waiting_reason(session, find_job(session, urgent[1]), alive_since(60)) or ""
        )


def test_claims_racing_for_one_member_never_pass_the_cap(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        alice, _ = create_user(session, "alice", Role.member)
        session.commit()
        for _ in range(12):
            create_job(session, SPEC, owner_id=alice.id)
            session.commit()
    barrier = threading.Barrier(4)

    def claims() -> list[int]:
        barrier.wait()
        got = []
        for _ in range(3):
            attempt = claim_next(sessions, "w", running_cap=3)
            if attempt is not None:
                got.append(attempt.job_id)
        return got

    with ThreadPoolExecutor(4) as pool:
        claimed = [job for got in pool.map(lambda _: claims(), range(4)) for job in got]
    assert len(claimed) == 3 and len(set(claimed)) == 3, claimed
