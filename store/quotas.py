"""What quotas count: a user's role and overrides, running cap, queued and recent jobs, CPU- and GPU-hours."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, ScalarSelect, Select, bindparam, func, select, update
from sqlalchemy.orm import Session

from store.tables import Job, JobAttempt, Role, User, utcnow


def role_and_quotas(session: Session, user_id: int) -> tuple[str, dict[str, Any]] | None:
    """The user's role and quota overrides, or None when there is no such user."""
    row = session.execute(select(User.role, User.quotas).where(User.id == user_id)).first()
    return None if row is None else (row.role, row.quotas or {})


def running_cap_of(role: str, quotas: dict[str, Any] | None, default: int | None) -> int | None:
    """How many jobs a user may have running at once: their own `running_jobs` quota, else `default`; None (no
    cap) for admins."""
    return None if role == Role.admin.value else (quotas or {}).get("running_jobs", default)


def hold_user(session: Session, user_id: int) -> None:
    """Hold the user's row until the transaction ends (a no-op UPDATE: a row lock on PostgreSQL, the write lock
    on SQLite), so that two submissions of one user are counted against the quotas one after the other."""
    session.execute(update(User).where(User.id == user_id).values(name=User.name))


@dataclass(frozen=True)
class Counts:
    queued: int
    running: int
    submitted_last_minute: int
    oldest_in_last_minute: datetime | None


@dataclass(frozen=True)
class Usage(Counts):
    cpu_hours: float
    gpu_hours: float


def _counts_statement() -> Select[int, int, int, datetime]:
    """The counts' statement, built once (its compiled form and cache key are then reused): each count an index
    range ((owner_id, status), (owner_id, created_at)); queued jobs and submissions counted up to `:up_to`."""
    mine = Job.owner_id == bindparam("user_id")
    recent = Job.created_at > bindparam("minute_start")

    def count(where: ColumnElement[bool], bounded: bool) -> ScalarSelect[int]:
        rows = select(Job.id).where(mine, where)
        rows = rows.limit(bindparam("up_to", type_=Integer)) if bounded else rows
        return select(func.count()).select_from(rows.subquery()).scalar_subquery()

    return select(
        count(Job.status == "queued", True),
        count(Job.status == "running", False),
        count(recent, True),
        select(func.min(Job.created_at)).where(mine, recent).scalar_subquery(),
    )


COUNTS = _counts_statement()


def counts_of(
    session: Session, user_id: int, minute_start: datetime, hold: bool = False, count_up_to: int | None = None
) -> Counts:
    """The user's jobs queued and running now, and submitted since `minute_start`: one query. With `count_up_to`,
    the queued jobs and the submissions are counted up to that many (a quota check needs no more: its cost then
    stays the same however many jobs the user has).

    With `hold`, in a transaction that has already written (the submitted jobs), submissions of one user are
    counted one after the other: SQLite's writer lock is held from that write; on PostgreSQL the user's row is
    locked first, in a statement of its own, so that the counts' statement starts after the other submission's
    commit and sees it (a statement waiting on a row lock keeps the snapshot it started with)."""
    if hold and session.get_bind().dialect.name == "postgresql":
        hold_user(session, user_id)
    up_to = count_up_to if count_up_to is not None else 2**31 - 1
    queued, running, submitted, oldest = session.execute(
        COUNTS, {"user_id": user_id, "minute_start": minute_start, "up_to": up_to}
    ).one()
    return Counts(queued, running, submitted, oldest)


def hours_of(session: Session, user_id: int, window_start: datetime) -> tuple[float, float]:
    """CPU- and GPU-hours of the user's running time since `window_start`: a job's cpus and gpus times each of its
    attempts' time within the window (a preempted or handed-back job's waits in the queue between attempts are not
    counted), over the attempts running now or ended in the window."""
    now = utcnow()
    cpu = gpu = 0.0
    in_window = (JobAttempt.ended_at > window_start) | (JobAttempt.ended_at.is_(None) & (Job.status == "running"))
    for started, ended, cpus, gpus in session.execute(
        select(JobAttempt.started_at, JobAttempt.ended_at, Job.cpus, Job.gpus)
        .join(Job, Job.id == JobAttempt.job_id)
        .where(Job.owner_id == user_id, in_window)
    ):
        hours = max(0.0, ((ended or now) - max(started, window_start)).total_seconds() / 3600)
        cpu, gpu = cpu + hours * cpus, gpu + hours * gpus
    return cpu, gpu
