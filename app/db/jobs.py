"""Every read and write of the jobs table, and the one function that changes a job's status."""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.tables import Job, JobStatus, utcnow

# from -> the statuses it may move to; nothing else ever writes jobs.status
TRANSITIONS: dict[JobStatus, set[JobStatus]] = {
    JobStatus.queued: {JobStatus.running, JobStatus.cancelled},
    JobStatus.running: {JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled, JobStatus.queued},
    JobStatus.succeeded: set(),
    JobStatus.failed: set(),
    JobStatus.cancelled: set(),
}
FINISHED = {JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled}


class JobNotFound(Exception):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class JobConflict(Exception):
    """The request does not fit the job's current status."""


def sources_of(target: JobStatus) -> list[JobStatus]:
    return [source for source, targets in TRANSITIONS.items() if target in targets]


def transition(
    session: Session,
    which: ColumnElement[bool],
    target: JobStatus,
    from_statuses: Sequence[JobStatus] | None = None,
    **values: Any,
) -> list[int]:
    """Move the jobs matched by `which` to `target` and set `values`, in one conditional UPDATE.

    Only jobs whose current status may move to `target` (and is in `from_statuses`, when given)
    change, so two processes racing on one job cannot both win. Returns the ids that moved.
    Does not commit.
    """
    return [job_id for job_id, _ in _transition(session, which, target, from_statuses, **values)]


def _transition(
    session: Session,
    which: ColumnElement[bool],
    target: JobStatus,
    from_statuses: Sequence[JobStatus] | None = None,
    **values: Any,
) -> list[tuple[int, int]]:
    """`transition`, returning (id, attempts) of each job that moved."""
    allowed = sources_of(target)
    if from_statuses is not None:
        allowed = [s for s in allowed if s in from_statuses]
    if target in FINISHED:
        values.setdefault("finished_at", utcnow())
    stmt = (
        update(Job)
        .where(which, Job.status.in_([s.value for s in allowed]))
        .values(status=target.value, **values)
        .returning(Job.id, Job.attempts)
        .execution_options(synchronize_session=False)
    )
    return [(row.id, row.attempts) for row in session.execute(stmt)]


class IdempotencyConflict(Exception):
    """The idempotency key was used before with a different request."""


def spec_sha256(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def create_job(session: Session, spec: dict[str, Any], idempotency_key: str | None = None) -> tuple[Job, bool]:
    """Insert a queued job and commit; returns (job, created).

    With an idempotency key already used for the same spec, returns that first job and False;
    with the key used for another spec, raises IdempotencyConflict.
    """
    digest = spec_sha256(spec)
    if idempotency_key is not None:
        existing = _job_for_key(session, idempotency_key, digest)
        if existing is not None:
            return existing, False
    job = Job(
        name=spec.get("name"),
        model=spec["model"],
        spec=spec,
        status=JobStatus.queued.value,
        max_steps=spec["max_steps"],
        attempts=0,
        step=0,
        cancel_requested=False,
        created_at=utcnow(),
        priority=spec.get("priority", 0),
        max_attempts=spec.get("max_attempts", 3),
        timeout_s=spec.get("timeout_s"),
        idempotency_key=idempotency_key,
        request_sha256=digest,
    )
    session.add(job)
    try:
        session.commit()
    except IntegrityError:  # another request with the same key won the race
        session.rollback()
        existing = _job_for_key(session, idempotency_key or "", digest)
        if existing is None:
            raise
        return existing, False
    return job, True


def _job_for_key(session: Session, key: str, digest: str) -> Job | None:
    job = session.scalar(select(Job).where(Job.idempotency_key == key))
    if job is not None and job.request_sha256 != digest:
        raise IdempotencyConflict(f"Idempotency-Key {key!r} was already used for a different job spec (job {job.id})")
    return job


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise JobNotFound(job_id)
    return job


def list_jobs(
    session: Session, status: JobStatus | None, model: str | None, limit: int, offset: int
) -> tuple[list[Job], int]:
    """Newest first, with the total count that matches the filters."""
    filters = []
    if status is not None:
        filters.append(Job.status == status.value)
    if model is not None:
        filters.append(Job.model == model)
    count = session.scalar(select(func.count()).select_from(Job).where(*filters)) or 0
    jobs = session.scalars(select(Job).where(*filters).order_by(Job.id.desc()).limit(limit).offset(offset))
    return list(jobs), count


def claim_next(session: Session, worker: str) -> "Ownership | None":
    """Atomically mark the next queued job (highest priority, then oldest) running for `worker`
    and commit; its id, or None.

    One UPDATE picks and takes the job, so two workers never get the same one: SQLite runs
    writes one at a time, and PostgreSQL's SKIP LOCKED lets each worker pass over rows that
    another is taking.
    """
    candidate = (
        select(Job.id).where(Job.status == JobStatus.queued.value).order_by(Job.priority.desc(), Job.id).limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidate = candidate.with_for_update(skip_locked=True)
    now = utcnow()
    claimed = _transition(
        session,
        Job.id == candidate.scalar_subquery(),
        JobStatus.running,
        from_statuses=[JobStatus.queued],
        started_at=now,
        heartbeat_at=now,
        worker=worker,
        attempts=Job.attempts + 1,
        cancel_requested=False,
    )
    session.commit()
    return Ownership(*claimed[0]) if claimed else None


def request_cancel(session: Session, job_id: int) -> Job:
    """Cancel a queued job at once; flag a running one (its training loop stops at the next check).

    Commits. Raises JobConflict for a job that has already finished.
    """
    job = get_job(session, job_id)
    if job.status == JobStatus.queued and transition(
        session, Job.id == job_id, JobStatus.cancelled, [JobStatus.queued]
    ):
        session.commit()
        return get_job(session, job_id)
    flagged = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.running.value)
        .values(cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    job = get_job(session, job_id)
    if flagged.rowcount == 0 and job.status in FINISHED:  # type: ignore[attr-defined]
        raise JobConflict(f"job {job_id} has already {job.status}; only queued or running jobs can be cancelled")
    return job


@dataclass(frozen=True)
class Ownership:
    """One attempt at a job: the job id and its attempt number, which fences off a stale worker."""

    job_id: int
    attempt: int

    def owns(self) -> ColumnElement[bool]:
        return (Job.id == self.job_id) & (Job.attempts == self.attempt) & (Job.status == JobStatus.running.value)


def record_progress(
    session: Session,
    ownership: Ownership,
    step: int | None = None,
    steps_per_second: float | None = None,
    images_per_second: float | None = None,
) -> bool | None:
    """Refresh the heartbeat (and store progress, when given) of a job this attempt still runs.

    Returns whether a cancel was requested, or None when the job is no longer this attempt's
    (requeued to another worker, or finished). No commit.
    """
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if step is not None:
        values.update(step=step, steps_per_second=steps_per_second, images_per_second=images_per_second)
    flags = session.execute(
        update(Job)
        .where(ownership.owns())
        .values(**values)
        .returning(Job.cancel_requested)
        .execution_options(synchronize_session=False)
    ).first()
    return None if flags is None else bool(flags[0])


def touch_heartbeat(session: Session, job_id: int, at: datetime | None = None) -> None:
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.running.value)
        .values(heartbeat_at=at or utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()


def requeue_stale_jobs(session: Session, stale_before: datetime) -> tuple[list[int], list[int]]:
    """Running jobs whose heartbeat is older than `stale_before` lost their worker: hand them back
    to the queue, or fail them once they used up max_attempts. Commits; returns (requeued, failed)."""
    stale = (Job.status == JobStatus.running.value) & (Job.heartbeat_at < stale_before)
    failed = transition(
        session,
        stale & (Job.attempts >= Job.max_attempts),
        JobStatus.failed,
        error="worker lost (no heartbeat) on the last allowed attempt; max_attempts reached",
    )
    requeued = transition(session, stale & (Job.attempts < Job.max_attempts), JobStatus.queued, worker=None)
    session.commit()
    return requeued, failed
