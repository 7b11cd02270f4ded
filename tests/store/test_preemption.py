"""Preemption through the executor pass, on a real database (SQLite and PostgreSQL): a placement with one slot
stands for the worker's forked child; the training process's side is played through the store."""

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from harness.waiting import wait_until
from specs import parse_job_spec
from store.attempts import (
    Attempt,
    AttemptState,
    PlacedJob,
    PreemptedFor,
    claim_next,
    preempt_attempt,
    preempted_for,
    record_progress,
)
from store.audit import audit_page
from store.jobs import create_job, find_job, request_cancel
from store.outbox import status_events
from store.tables import Job, JobEvent
from store.unit_of_work import unit_of_work
from workers.executor import Capacity, ExecutorPass, Placed
from workers.settings import WorkerSettings


class OneSlot:
    """A placement with room for one attempt at a time, as a local worker has."""

    name, role = "one-slot", "worker"

    def __init__(self) -> None:
        self.placed: set[Attempt] = set()

    def refresh(self) -> None:
        pass

    def adopt(self, running: Sequence[PlacedJob]) -> Iterable[Attempt]:
        return []

    def capacity(self, running: Sequence[PlacedJob]) -> Capacity:
        return Capacity(0.0, 1.0, 0.0, 1.0)

    def ready(self) -> bool:
        return not self.placed

    def state(self, attempt: Attempt) -> Placed:
        return Placed.running if attempt in self.placed else Placed.ended

    def place(self, job: PlacedJob, attempt: Attempt) -> None:
        self.placed.add(attempt)

    def where(self, attempt: Attempt) -> dict[str, Any] | None:
        return None

    def output(self, attempt: Attempt, job: PlacedJob) -> tuple[str, bool] | None:
        return None

    def output_not_saved(self, attempt: Attempt) -> None:
        pass

    def halt(self, attempt: Attempt) -> None:
        self.placed.discard(attempt)

    def settle(self, attempt: Attempt, job: PlacedJob) -> None:
        pass

    def forget(self, attempt: Attempt) -> None:
        self.placed.discard(attempt)


def executor(sessions: sessionmaker[Session], database_url: str, **settings: Any) -> ExecutorPass:
    chosen = WorkerSettings(
        database_url=database_url, heartbeat_seconds=0.05, **{"preempt_min_run_seconds": 0, **settings}
    )
    return ExecutorPass(OneSlot(), sessions, chosen, output_every=60)


def look_at_every_pass(executor_pass: ExecutorPass, passes: int) -> None:
    """`passes` passes, each looking for a job to preempt (not once a second, as an executor does)."""
    for _ in range(passes):
        executor_pass._preempt_looked_at = float("-inf")  # noqa: SLF001
        executor_pass.run_once()


def passes_until_asked(
    executor_pass: ExecutorPass, sessions: sessionmaker[Session], job_id: int, timeout: float, what: str
) -> None:
    """Executor passes until one asks `job_id` to give its place (a busy executor looks once a second)."""
    wait_until(lambda: (executor_pass.run_once(), job(sessions, job_id).preempt_requested)[1], timeout, what)


def submit(sessions: sessionmaker[Session], **fields: Any) -> int:
    with unit_of_work(sessions) as session:
        return create_job(session, parse_job_spec({"model": "torch_mlp", **fields}))[0].id


def job(sessions: sessionmaker[Session], job_id: int) -> Job:
    with sessions() as session:
        return find_job(session, job_id)


def ends_its_attempt_as_asked(executor_pass: ExecutorPass, attempt: Attempt, step: int = 40) -> None:
    """The training process's side: its heartbeat hears the request, it checkpoints, gives its place and ends."""
    with unit_of_work(executor_pass.sessions) as session:
        assert record_progress(session, attempt, step, 10.0, 1000.0) is AttemptState.preempt_requested
        assert preempt_attempt(session, attempt, step)
    executor_pass.placement.placed.discard(attempt)  # type: ignore[attr-defined]


def test_a_high_priority_job_takes_the_place_of_a_low_one_which_resumes_first_among_its_equals(
    sessions: sessionmaker[Session], database_url: str
) -> None:
    executor_pass = executor(sessions, database_url)
    low = submit(sessions, priority=0)
    first = executor_pass.run_once()
    assert first == Attempt(low, 1)
    later_equal = submit(sessions, priority=0)  # submitted after the low job: it stays behind it
    urgent = submit(sessions, priority=50)
    passes_until_asked(executor_pass, sessions, low, 5, "the request")
    ends_its_attempt_as_asked(executor_pass, first)
    assert executor_pass.run_once() == Attempt(urgent, 1)  # the low one's place, at the next pass
    preempted = job(sessions, low)
    assert (preempted.status, preempted.preemptions, preempted.handed_back, preempted.step) == ("queued", 1, 1, 40)
    with sessions() as session:  # what its waiting_reason says
        assert preempted_for(session, preempted) == PreemptedFor(urgent, 50, 40)
    with sessions() as session:
        events = session.scalars(select(JobEvent.kind).where(JobEvent.job_id == low).order_by(JobEvent.id)).all()
    assert list(events) == ["job.running", "job.queued", "job.preempted"]
    with sessions() as session:  # what a stream reads, and the audit log
        _cursor, changes = status_events(session, low, 0)
        entries, _total = audit_page(session, 10, 0)
    assert [change.get("status", "preempted") for change in changes] == ["running", "queued", "preempted"]
    (entry,) = [e for e in entries if e.action == "job.preempt"]
    assert (entry.actor, entry.target, entry.detail) == (
        "one-slot",
        f"job {low}",
        {"attempt": 1, "for_job": urgent, "priority": 50},
    )
    executor_pass.placement.placed.clear()  # type: ignore[attr-defined]  # the urgent one ended
    with unit_of_work(sessions) as session:
        session.execute(update(Job).where(Job.id == urgent).values(status="succeeded"))
    assert executor_pass.run_once() == Attempt(low, 2)  # ahead of the equal job submitted after it
    assert not job(sessions, low).preempt_requested and job(sessions, later_equal).status == "queued"
    with sessions() as session:
        assert preempted_for(session, job(sessions, low)) is None  # running again: no reason to wait


def test_equal_priorities_an_opted_out_job_and_one_past_its_preemptions_keep_their_place(
    sessions: sessionmaker[Session], database_url: str
) -> None:
    for low_fields, urgent_priority, settings in (
        ({"priority": 5}, 5, {"preempt_priority_gap": 1}),  # equal priorities, whatever the gap
        ({"priority": 0, "preemptible": False}, 50, {}),
        ({"priority": 0}, 50, {"preempt_max_times": 0}),
        ({"priority": 0}, 50, {"preemption": False}),
        ({"priority": 0}, 9, {}),  # below the default gap of 10
    ):
        with unit_of_work(sessions) as session:
            session.execute(update(Job).where(Job.status.in_(["queued", "running"])).values(status="cancelled"))
        executor_pass = executor(sessions, database_url, **settings)
        low = submit(sessions, **low_fields)
        assert executor_pass.run_once() == Attempt(low, 1)
        submit(sessions, priority=urgent_priority)
        look_at_every_pass(executor_pass, 3)
        assert not job(sessions, low).preempt_requested, (low_fields, urgent_priority, settings)


def test_a_job_is_not_preempted_within_its_minimum_run_and_is_once_past_it(
    sessions: sessionmaker[Session], database_url: str
) -> None:
    """The minimum is an hour; the attempt's start is then moved back past it (no test waits on the clock)."""
    executor_pass = executor(sessions, database_url, preempt_min_run_seconds=3600.0)
    low = submit(sessions, priority=0)
    assert executor_pass.run_once() == Attempt(low, 1)
    submit(sessions, priority=50)
    look_at_every_pass(executor_pass, 3)
    assert not job(sessions, low).preempt_requested  # it started less than an hour ago
    with unit_of_work(sessions) as session:
        started_at = session.get_one(Job, low).started_at
        assert started_at is not None
        session.execute(update(Job).where(Job.id == low).values(started_at=started_at - timedelta(seconds=3601)))
    passes_until_asked(executor_pass, sessions, low, 10, "past the minimum")


def test_a_cancel_pending_when_the_job_gives_its_place_cancels_it(
    sessions: sessionmaker[Session], database_url: str
) -> None:
    executor_pass = executor(sessions, database_url)
    low = submit(sessions, priority=0)
    first = executor_pass.run_once()
    assert first is not None
    submit(sessions, priority=50)
    passes_until_asked(executor_pass, sessions, low, 5, "the request")
    with unit_of_work(sessions) as session:
        request_cancel(session, low)
        assert preempt_attempt(session, first, 40)
    assert job(sessions, low).status == "cancelled"


def test_a_preemption_never_makes_room_for_a_job_the_claim_would_not_start(
    sessions: sessionmaker[Session], database_url: str
) -> None:
    """The waiting job is the one the claim would take: an urgent job that fits no executor here waits."""
    executor_pass = executor(sessions, database_url)
    low = submit(sessions, priority=0)
    assert executor_pass.run_once() == Attempt(low, 1)
    submit(sessions, priority=50, cpus=2)  # this executor offers one CPU
    look_at_every_pass(executor_pass, 3)
    assert not job(sessions, low).preempt_requested
    assert claim_next(sessions, "elsewhere", 0, 1) is None  # and nothing else queued it could take


def test_two_executors_that_see_one_urgent_job_waiting_preempt_one_job_between_them(
    sessions: sessionmaker[Session], database_url: str
) -> None:
    first, second = executor(sessions, database_url), executor(sessions, database_url)
    second.placement.name = "other-slot"
    lows = [submit(sessions, priority=0), submit(sessions, priority=0)]
    assert first.run_once() == Attempt(lows[0], 1) and second.run_once() == Attempt(lows[1], 1)
    submit(sessions, priority=50)
    for executor_pass in (first, second):
        look_at_every_pass(executor_pass, 2)
    assert sorted(job(sessions, low).preempt_requested for low in lows) == [False, True]
