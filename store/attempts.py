"""One attempt at a job, as an executor sees it: claim, start, heartbeat, progress, and how it ended.

Every write is fenced by the attempt: a worker whose job was handed to another attempt meanwhile
(requeued after a lost heartbeat, say) changes nothing.
"""

import enum
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from store.alerts import check_stalled, stop_reason
from store.artifacts import put_artifact, read_artifact
from store.audit import record_audit
from store.blobs import delete_artifacts
from store.errors import ArtifactCorrupt
from store.jobs import find_job
from store.outbox import PREEMPTED, record_event
from store.points import delete_points_after
from store.quotas import hold_user, running_cap_of
from store.tables import Artifact, ArtifactKind, AttemptOutcome, Job, JobAttempt, JobStatus, User, utcnow
from store.transitions import transition
from store.unit_of_work import unit_of_work

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 4000
# Fair share's memory: an owner's jobs started this long ago or later count against their next claim. A count of
# jobs, not of hours: cheap, the same SQL on both databases, and for a course's runs (similar sizes) close to
# the share of the workers' time; a user of much longer jobs gets more time than one of short ones.
FAIR_SHARE_WINDOW = timedelta(hours=24)
MAX_OWNERS_TRIED = 8  # a claim that finds the jobs of this many owners all being taken by others tries again later


@dataclass(frozen=True)
class Attempt:
    """One attempt at a job: the job id and its attempt number, which fences off a stale worker."""

    job_id: int
    number: int


def _still_runs(attempt: Attempt) -> ColumnElement[bool]:
    """SQL: the job is running, and this attempt is the one running it."""
    return (Job.id == attempt.job_id) & (Job.attempts == attempt.number) & (Job.status == JobStatus.running.value)


@dataclass(frozen=True)
class PlacedJob:
    """A job as an executor keeps it between passes (a copy of its row: rows do not outlive their session)."""

    id: int
    status: str
    attempts: int
    worker: str | None
    model: str
    gpus: float
    cpus: float
    timeout_s: int | None
    created_at: datetime
    started_at: datetime | None
    cancel_requested: bool
    priority: int = 0
    preemptible: bool = True
    preemptions: int = 0
    preempt_requested: bool = False


def _placed(job: Job) -> PlacedJob:
    return PlacedJob(job.id, job.status, job.attempts, job.worker, job.model, job.gpus, job.cpus, job.timeout_s,
                     job.created_at, job.started_at, job.cancel_requested, job.priority, job.preemptible,
                     job.preemptions, job.preempt_requested)  # fmt: skip


def jobs_run_by(session: Session, worker: str) -> list[PlacedJob]:
    """The jobs the store says `worker` runs."""
    running = select(Job).where(Job.status == JobStatus.running.value, Job.worker == worker)
    return [_placed(job) for job in session.scalars(running)]


def jobs_by_id(session: Session, job_ids: list[int]) -> dict[int, PlacedJob]:
    """These jobs as they are now (a deleted one is absent)."""
    return {job.id: _placed(job) for job in session.scalars(select(Job).where(Job.id.in_(job_ids)))}


class AttemptState(enum.Enum):
    """What a heartbeat learns: go on, stop because a cancel (or a sweep's early stop) was asked, or stop
    because the job is another's."""

    running = "running"
    cancel_requested = "cancel_requested"
    early_stop_requested = "early_stop_requested"
    preempt_requested = "preempt_requested"  # an executor asks it to checkpoint and give its place
    lost = "lost"  # requeued to another attempt, or finished


def _owners_in_turn(
    session: Session, fits: ColumnElement[bool], now: datetime, running_cap: int | None
) -> tuple[int, list[tuple[int | None, int | None]]]:
    """The highest priority among the queued jobs that fit and whose owners may start one more, and the owners of
    such jobs in the order fair share serves them: fewest jobs started in the last FAIR_SHARE_WINDOW first, then
    the one waiting longest; each with their cap on running jobs (`running_cap`, or their own `running_jobs`
    quota; admins and nobody: None). An owner with that many jobs running waits, and their jobs, whatever their
    priority, keep no one else's from starting."""
    queued = (Job.status == JobStatus.queued.value) & fits
    highest: dict[int | None, int] = {
        owner: priority
        for owner, priority in session.execute(
            select(Job.owner_id, func.max(Job.priority)).where(queued).group_by(Job.owner_id)
        )
    }
    since = now - FAIR_SHARE_WINDOW
    owned = [owner for owner in highest if owner is not None]
    recent: dict[int | None, int] = {}
    caps: dict[int | None, int | None] = {}
    if owned:
        running = select(func.count()).where(Job.owner_id == User.id, Job.status == JobStatus.running.value)
        started = select(func.count()).where(Job.owner_id == User.id, Job.started_at > since)
        for user_id, role, quotas, running_now, started_lately in session.execute(
            select(User.id, User.role, User.quotas, running.scalar_subquery(), started.scalar_subquery()).where(
                User.id.in_(owned)
            )
        ):
            caps[user_id] = running_cap_of(role, quotas, running_cap)
            if caps[user_id] is not None and running_now >= caps[user_id]:
                del highest[user_id]  # at their cap: their jobs wait, and set no priority for the others
            recent[user_id] = started_lately
    if not highest:
        return 0, []
    top = max(highest.values())
    at_top = [owner for owner, priority in highest.items() if priority == top]
    mine: ColumnElement[bool] = Job.owner_id.in_([owner for owner in at_top if owner is not None])
    if None in at_top:
        mine = mine | Job.owner_id.is_(None)
    waiting: dict[int | None, int] = {
        owner: first
        for owner, first in session.execute(
            select(Job.owner_id, func.min(Job.id)).where(queued, Job.priority == top, mine).group_by(Job.owner_id)
        )
    }
    if len(waiting) > 1 and None in waiting:  # nobody's jobs (the single-user mode, the API_KEY): one more owner
        recent[None] = session.scalar(select(func.count()).where(Job.started_at > since, Job.owner_id.is_(None))) or 0
    in_turn = sorted(waiting, key=lambda owner: (recent.get(owner, 0), waiting[owner]))
    return top, [(owner, caps.get(owner)) for owner in in_turn]


# a disabled user's queued jobs wait (until an admin enables them again, or cancels them)
_OWNER_NOT_DISABLED = ~exists().where(User.id == Job.owner_id, User.disabled_at.is_not(None))


def _fits(gpus: float, cpus: float, spec_version: int | None, kinds: Collection[str] | None) -> ColumnElement[bool]:
    """SQL: a queued job an executor with these GPUs and CPUs free (and this newest spec version, these model
    kinds installed) could run, unless its owner is disabled."""
    fits = (Job.gpus <= gpus) & (Job.cpus <= cpus) & _OWNER_NOT_DISABLED
    if spec_version is not None:
        fits &= Job.spec_version <= spec_version
    if kinds is not None:
        fits &= Job.model.in_(sorted(kinds))
    return fits


def _owned_by(owner: int | None) -> ColumnElement[bool]:
    return Job.owner_id.is_(None) if owner is None else Job.owner_id == owner


def _oldest_queued(query: Any, fits: ColumnElement[bool], top: int, owner: int | None) -> Any:
    """`query` narrowed to the owner's oldest queued job of priority `top` that fits: what a claim takes next."""
    return (
        query.where(Job.status == JobStatus.queued.value, fits, Job.priority == top, _owned_by(owner))
        .order_by(Job.id)
        .limit(1)
    )


def claim_next(
    sessions: sessionmaker[Session],
    worker: str,
    gpus: float = 0.0,
    cpus: float = 1e9,
    spec_version: int | None = None,
    running_cap: int | None = None,
    kinds: Collection[str] | None = None,
) -> Attempt | None:
    """Atomically mark the next queued job that fits `gpus` and `cpus`, and whose spec's schema version is at most
    `spec_version` (when given: the newest the executor understands) and whose kind is among `kinds` (when given:
    those installed there), running for `worker`; the new attempt, or
    None when no queued job fits. The next job: of the highest priority; among those, fair share picks
    the owner (`_owners_in_turn`; owners at their `running_cap` wait), then the owner's oldest.

    One UPDATE takes the job, so two workers never get the same one: SQLite runs writes one at a time, and
    PostgreSQL's SKIP LOCKED lets each worker pass over rows that another is taking (the next owner in turn is
    tried when all of one owner's are being taken). Each owner is tried in a unit of work of its own, so a claim
    lets go of one owner's row before it holds the next one's: no two claims deadlock.
    """
    fits = _fits(gpus, cpus, spec_version, kinds)
    now = utcnow()
    with sessions() as session:
        top, owners = _owners_in_turn(session, fits, now, running_cap)
    for owner, cap in owners[:MAX_OWNERS_TRIED]:
        with unit_of_work(sessions) as session:
            claimed = _claim_for(session, owner, cap, fits, top, worker, now)
        if claimed is not None:
            return claimed
    return None


def _claim_for(
    session: Session,
    owner: int | None,
    cap: int | None,
    fits: ColumnElement[bool],
    top: int,
    worker: str,
    now: datetime,
) -> Attempt | None:
    """The owner's oldest queued job of priority `top` that fits, taken for `worker`, unless another took it
    first or the owner reached their `cap` meanwhile."""
    owned = _owned_by(owner)
    candidate = _oldest_queued(select(Job.id), fits, top, owner)
    if session.get_bind().dialect.name == "postgresql":
        candidate = candidate.with_for_update(skip_locked=True)
    takes = Job.id == candidate.scalar_subquery()
    if cap is not None and owner is not None:
        # two executors claiming for one user at once take turns, and the second counts the first's job
        hold_user(session, owner)
        running = select(func.count()).where(owned, Job.status == JobStatus.running.value).scalar_subquery()
        takes &= running < cap
    claimed = transition(
        session,
        takes,
        JobStatus.running,
        from_statuses=[JobStatus.queued],
        started_at=now,
        heartbeat_at=now,
        progress_at=now,
        worker=worker,
        attempts=Job.attempts + 1,
        preempt_requested=False,
    )
    return Attempt(*claimed[0]) if claimed else None


@dataclass(frozen=True)
class Waiting:
    """The queued job a claim would take next, with what it needs."""

    id: int
    priority: int
    gpus: float
    cpus: float


def next_in_line(
    sessions: sessionmaker[Session],
    gpus: float,
    cpus: float,
    spec_version: int | None = None,
    running_cap: int | None = None,
    kinds: Collection[str] | None = None,
) -> Waiting | None:
    """The job `claim_next` would take on an executor that had `gpus` and `cpus` free (its owner's running cap
    and fair share counted as the claim counts them), without taking it: what a preemption would make room for.
    A preemption never starts a job the claim would not start."""
    fits = _fits(gpus, cpus, spec_version, kinds)
    with sessions() as session:
        top, owners = _owners_in_turn(session, fits, utcnow(), running_cap)
        if not owners:
            return None
        query = select(Job.id, Job.priority, Job.gpus, Job.cpus)
        row = session.execute(_oldest_queued(query, fits, top, owners[0][0])).first()
    return None if row is None else Waiting(row.id, row.priority, row.gpus, row.cpus)


def request_preemption(session: Session, attempt: Attempt, for_job: Waiting, executor: str = "an executor") -> bool:
    """Ask the attempt's job to checkpoint and give its place to `for_job` (it does at its next heartbeat), with an
    entry in the audit log naming `executor`, the job it makes room for and that job's priority; False when the
    job is no longer this attempt's, or when a running job was asked already (its place comes first)."""
    # the waiting job's row held first: executors making room for it take turns, and each sees a request another
    # one made (one preemption at a time in the whole service, not one per executor that saw the job waiting)
    session.execute(update(Job).where(Job.id == for_job.id).values(priority=Job.priority))
    asked_before = select(Job.id).where(Job.status == JobStatus.running.value, Job.preempt_requested).exists()
    asked = session.execute(
        update(Job)
        .where(_still_runs(attempt), ~Job.preempt_requested, ~asked_before)
        .values(preempt_requested=True)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ).first()
    if asked is not None:
        log.info("job %s (attempt %s) gives its place to job %s (priority %s)", attempt.job_id, attempt.number,
                 for_job.id, for_job.priority)  # fmt: skip
        record_audit(session, None, executor, "job.preempt", f"job {attempt.job_id}", None,
                     {"attempt": attempt.number, "for_job": for_job.id, "priority": for_job.priority})  # fmt: skip
        session.execute(
            update(JobAttempt)
            .where(JobAttempt.job_id == attempt.job_id, JobAttempt.number == attempt.number)
            .values(preempted_for=for_job.id)
        )
    return asked is not None


@dataclass(frozen=True)
class PreemptedFor:
    """A queued job's last attempt gave its place to `job_id` (of `priority`) at `step`."""

    job_id: int
    priority: int | None  # None: that job is gone
    step: int | None


def preempted_for(session: Session, job: Job) -> PreemptedFor | None:
    """Whom the queued `job`'s last attempt gave its place to, when it was preempted (one indexed read)."""
    if job.status != JobStatus.queued or not job.preemptions:
        return None
    found = session.execute(
        select(JobAttempt.preempted_for, JobAttempt.steps_done, Job.priority)
        .outerjoin(Job, Job.id == JobAttempt.preempted_for)
        .where(
            JobAttempt.job_id == job.id,
            JobAttempt.number == job.attempts,
            JobAttempt.outcome == AttemptOutcome.preempted.value,
            JobAttempt.preempted_for.is_not(None),
        )  # fmt: skip
    ).first()
    return None if found is None else PreemptedFor(found.preempted_for, found.priority, found.steps_done)


@dataclass(frozen=True)
class AttemptStart:
    """What an attempt needs to run: the stored spec, the checkpoint to resume from (if any), the alert rules
    that fired on an earlier attempt (they do not fire again), and the CPU cores it was placed with."""

    spec: dict[str, Any]
    checkpoint: bytes | None
    checkpoint_step: int
    alerts_fired: frozenset[int] = frozenset()
    cpus: float = 1.0


def start_attempt(session: Session, attempt: Attempt) -> AttemptStart:
    """The job's spec and last checkpoint; points logged after that checkpoint are dropped, since
    this attempt logs them again. A damaged checkpoint is dropped: the attempt starts from step 0."""
    job = find_job(session, attempt.job_id)
    spec, fired = job.spec, frozenset(entry["rule"] for entry in job.alerts_fired or [])
    try:
        found = read_artifact(session, attempt.job_id, ArtifactKind.checkpoint)
    except ArtifactCorrupt as exc:
        log.warning("%s; it starts again from step 0", exc)
        delete_artifacts(
            session, (Artifact.job_id == attempt.job_id) & (Artifact.kind == ArtifactKind.checkpoint.value)
        )
        found = None
    step, checkpoint = (found[0].step, found[1]) if found else (0, None)
    delete_points_after(session, attempt.job_id, step)
    session.execute(
        update(JobAttempt)
        .where(JobAttempt.job_id == attempt.job_id, JobAttempt.number == attempt.number)
        .values(resumed_from_step=step)
        .execution_options(synchronize_session=False)
    )
    return AttemptStart(spec, checkpoint, step, fired, job.cpus)


def record_progress(
    session: Session,
    attempt: Attempt,
    step: int | None = None,
    steps_per_second: float | None = None,
    images_per_second: float | None = None,
) -> AttemptState:
    """Refresh the heartbeat (and store progress, when given) of a job this attempt still runs,
    and read back whether a cancel or an early stop was requested (a cancel wins). No commit; roll back
    when it says `lost`."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if step is not None:
        values.update(step=step, steps_per_second=steps_per_second, images_per_second=images_per_second,
                      progress_at=values["heartbeat_at"])  # fmt: skip
    flags = session.execute(
        update(Job)
        .where(_still_runs(attempt))
        .values(**values)
        .returning(Job.cancel_requested, Job.early_stop_requested, Job.preempt_requested)
        .execution_options(synchronize_session=False)
    ).first()
    if flags is None:
        return AttemptState.lost
    if flags.cancel_requested:
        return AttemptState.cancel_requested
    if flags.early_stop_requested:
        return AttemptState.early_stop_requested
    return AttemptState.preempt_requested if flags.preempt_requested else AttemptState.running


def touch_heartbeat(session: Session, attempt: Attempt) -> AttemptState:
    """The watching executor's heartbeat for its training process's attempt; fires the job's `stalled` alert rule
    when the process wrote no progress for the rule's seconds."""
    state = record_progress(session, attempt)
    if state is not AttemptState.lost:
        job = session.get(Job, attempt.job_id, populate_existing=True)
        if job is not None:
            check_stalled(session, job)
    return state


def requeue_stale_jobs(session: Session, stale_before: datetime) -> tuple[list[int], list[int]]:
    """Running jobs whose heartbeat is older than `stale_before` lost their worker: hand them back
    to the queue, or fail them once they lost max_attempts attempts (attempts handed back on purpose
    do not count); a job with a pending cancel is cancelled instead. Returns (requeued, failed)."""
    stale = (Job.status == JobStatus.running.value) & (Job.heartbeat_at < stale_before)
    silent = AttemptOutcome.lost_heartbeat
    transition(session, stale & Job.cancel_requested, JobStatus.cancelled, outcome=silent, worker=None)
    lost = Job.attempts - Job.handed_back  # this lost attempt included
    failed = transition(
        session,
        stale & ~Job.cancel_requested & (lost >= Job.max_attempts),
        JobStatus.failed,
        outcome=silent,
        error="worker lost (no heartbeat) on the last allowed attempt; max_attempts reached",
    )
    requeued = transition(
        session, stale & ~Job.cancel_requested & (lost < Job.max_attempts), JobStatus.queued, outcome=silent,
        worker=None,
    )  # fmt: skip
    return [job_id for job_id, _ in requeued], [job_id for job_id, _ in failed]


# How an attempt ended. Each returns False when the job was no longer this attempt's. (An ending drops
# the job's checkpoint: `transition` does it for every finished status.)


def fail_attempt(
    session: Session, attempt: Attempt, message: str, outcome: AttemptOutcome = AttemptOutcome.failed
) -> bool:
    """Mark the job failed with a readable error. Every bad ending goes through here."""
    log.warning("job %s failed: %s", attempt.job_id, message)
    return bool(
        transition(session, _still_runs(attempt), JobStatus.failed, outcome=outcome, error=message[:MAX_ERROR_CHARS])
    )


def _end_with_model(
    session: Session,
    attempt: Attempt,
    target: JobStatus,
    metrics: dict[str, Any],
    step: int,
    model: bytes | None,
) -> bool:
    """The job's ending and its model artifact in one transaction; an alert rule that stopped it is named in
    its `error`."""
    job = session.get(Job, attempt.job_id, populate_existing=True)
    why = stop_reason(job) if job is not None and target is JobStatus.stopped_early else None
    extra: dict[str, Any] = {"error": why} if why else {}
    moved = transition(
        session, _still_runs(attempt), target, [JobStatus.running], final_metrics=metrics, step=step, **extra
    )
    if moved and model is not None:
        put_artifact(session, attempt.job_id, ArtifactKind.model, model, step)
    return bool(moved)


def succeed_attempt(
    session: Session, attempt: Attempt, metrics: dict[str, Any], step: int, model: bytes | None
) -> bool:
    """A succeeded job always has its model."""
    return _end_with_model(session, attempt, JobStatus.succeeded, metrics, step, model)


def stop_early_attempt(
    session: Session, attempt: Attempt, metrics: dict[str, Any], step: int, model: bytes | None
) -> bool:
    """A trial its sweep stopped early: it keeps its points, its metrics and the model it reached."""
    return _end_with_model(session, attempt, JobStatus.stopped_early, metrics, step, model)


def cancel_attempt(session: Session, attempt: Attempt, metrics: dict[str, Any], step: int) -> bool:
    """A cancelled job keeps the points it logged and the metrics it reached."""
    return bool(
        transition(
            session, _still_runs(attempt), JobStatus.cancelled, [JobStatus.running], final_metrics=metrics, step=step
        )
    )


def hand_back(session: Session, attempt: Attempt) -> bool:
    """Put the job back in the queue on purpose (the worker is stopping): its next attempt resumes from
    its last checkpoint, and this one does not count against max_attempts. A job whose cancel is
    pending is cancelled instead."""
    runs = _still_runs(attempt)
    moved = transition(session, runs & Job.cancel_requested, JobStatus.cancelled, [JobStatus.running], worker=None)
    if not moved:
        moved = transition(
            session, runs, JobStatus.queued, [JobStatus.running], worker=None, handed_back=Job.handed_back + 1
        )
    return bool(moved)


def preempt_attempt(session: Session, attempt: Attempt, step: int) -> bool:
    """The attempt gave its place (an executor asked: `request_preemption`) after checkpointing at `step`, which
    becomes the job's step: it goes back to the queue, keeping its place among equals (its id), and its next
    attempt resumes from that checkpoint; this one does not count against max_attempts. A `job.preempted` event
    tells it. A job whose cancel is pending is cancelled instead."""
    runs = _still_runs(attempt)
    if transition(session, runs & Job.cancel_requested, JobStatus.cancelled, [JobStatus.running], worker=None):
        return True
    moved = transition(session, runs, JobStatus.queued, [JobStatus.running], outcome=AttemptOutcome.preempted,
                       worker=None, handed_back=Job.handed_back + 1, preemptions=Job.preemptions + 1,
                       preempt_requested=False, step=step)  # fmt: skip
    for job_id, number in moved:
        record_event(session, PREEMPTED, {"job_id": job_id, "attempt": number, "step": step}, job_id=job_id)
    return bool(moved)


def lose_attempt(session: Session, attempt: Attempt, why: str) -> str | None:
    """An attempt whose process ended without recording an outcome (its node lost, killed, out of
    memory): the job goes back to the queue (resuming from its checkpoint), or fails with `why` once it
    lost max_attempts attempts; a pending cancel cancels it. Returns the new status, or None when the
    job was no longer this attempt's."""
    runs = _still_runs(attempt)
    lost = Job.attempts - Job.handed_back
    for target, which, values in (
        (JobStatus.cancelled, runs & Job.cancel_requested, {"worker": None}),
        (JobStatus.failed, runs & ~Job.cancel_requested & (lost >= Job.max_attempts),
         {"error": f"{why[:MAX_ERROR_CHARS - 60]} (on the last allowed attempt)"}),
        (JobStatus.queued, runs & ~Job.cancel_requested & (lost < Job.max_attempts), {"worker": None}),
    ):  # fmt: skip
        if transition(session, which, target, [JobStatus.running], outcome=AttemptOutcome.lost, **values):
            return target.value
    return None


def record_placement(session: Session, attempt: Attempt, placement: dict[str, Any]) -> None:
    """Where the attempt runs (a Ray node and submission, say)."""
    moved = session.execute(
        update(Job).where(_still_runs(attempt)).values(placement=placement).returning(Job.id)
        .execution_options(synchronize_session=False)
    ).first()  # fmt: skip
    if moved is not None:
        session.execute(
            update(JobAttempt)
            .where(JobAttempt.job_id == attempt.job_id, JobAttempt.number == attempt.number)
            .values(placement=placement)
            .execution_options(synchronize_session=False)
        )


def attempts_of(session: Session, job_id: int) -> list[JobAttempt]:
    """Every attempt at the job, the first first."""
    return list(session.scalars(select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.number)))


def record_reproducibility(session: Session, attempt: Attempt, record: dict[str, Any]) -> None:
    """What the attempt's run depended on beyond its spec (`models.reproducibility`)."""
    session.execute(
        update(Job)
        .where(_still_runs(attempt))
        .values(reproducibility=record)
        .execution_options(synchronize_session=False)
    )
