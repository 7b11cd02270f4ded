"""The functions that change a job's or a sweep's status, and the moves each allows."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, insert, select, tuple_, update
from sqlalchemy.orm import Session

from store.blobs import delete_artifacts
from store.outbox import record_event, record_events
from store.tables import (
    Artifact,
    ArtifactKind,
    AttemptOutcome,
    Job,
    JobAttempt,
    JobStatus,
    Sweep,
    SweepStatus,
    utcnow,
)

# from -> the statuses it may move to; nothing else ever writes jobs.status
TRANSITIONS: dict[JobStatus, set[JobStatus]] = {
    JobStatus.queued: {JobStatus.running, JobStatus.cancelled},
    JobStatus.running: {
        JobStatus.succeeded,
        JobStatus.failed,
        JobStatus.cancelled,
        JobStatus.queued,
        JobStatus.stopped_early,
    },
    JobStatus.succeeded: set(),
    JobStatus.failed: set(),
    JobStatus.cancelled: set(),
    JobStatus.stopped_early: set(),
}
# what an event tells of the values a move sets (the rest is bookkeeping: times, worker, counters)
EVENT_FIELDS = ("error", "final_metrics", "step")
FINISHED = {JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled, JobStatus.stopped_early}
WITH_MODEL = {JobStatus.succeeded, JobStatus.stopped_early}  # the endings that store a model


# a sweep runs, then ends one way; nothing else ever writes sweeps.status
SWEEP_TRANSITIONS: dict[SweepStatus, set[SweepStatus]] = {
    SweepStatus.running: {SweepStatus.finished, SweepStatus.cancelled, SweepStatus.failed},
    SweepStatus.finished: set(),
    SweepStatus.cancelled: set(),
    SweepStatus.failed: set(),
}


# how a running attempt ends when its job moves to each status, unless the mover says otherwise (a preemption, a
# lost heartbeat, a timeout)
ENDINGS: dict[JobStatus, AttemptOutcome] = {
    JobStatus.succeeded: AttemptOutcome.succeeded,
    JobStatus.failed: AttemptOutcome.failed,
    JobStatus.cancelled: AttemptOutcome.cancelled,
    JobStatus.stopped_early: AttemptOutcome.stopped_early,
    JobStatus.queued: AttemptOutcome.handed_back,
}


def sources_of(target: JobStatus) -> list[JobStatus]:
    return [source for source, targets in TRANSITIONS.items() if target in targets]


def transition(
    session: Session,
    which: ColumnElement[bool],
    target: JobStatus,
    from_statuses: Sequence[JobStatus] | None = None,
    outcome: AttemptOutcome | None = None,
    **values: Any,
) -> list[tuple[int, int]]:
    """Move the jobs matched by `which` to `target` and set `values`, in one conditional UPDATE; a job
    that ends (any finished status) loses its checkpoint in the same transaction (a finished job never
    resumes; its model, when it has one, is a separate artifact). Each move writes its `job.<status>` event
    to the outbox in the same transaction, and keeps the job's attempts' rows: a claim (to `running`) adds its
    attempt's, and a move from `running` ends that attempt's with `outcome` (by default the one ENDINGS gives the
    target) and the job's step.

    Only jobs whose current status may move to `target` (and is in `from_statuses`, when given)
    change, so two processes racing on one job cannot both win. Returns (id, attempts) of each job
    that moved. Does not commit.
    """
    allowed = sources_of(target)
    if from_statuses is not None:
        allowed = [s for s in allowed if s in from_statuses]
    if target in FINISHED:
        values.setdefault("finished_at", utcnow())
    stmt = (
        update(Job)
        .where(which, Job.status.in_([s.value for s in allowed]))
        .values(status=target.value, **values)
        .returning(Job.id, Job.attempts, Job.name, Job.model)
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(stmt).all()
    moved = [(row.id, row.attempts) for row in rows]
    told = {key: values[key] for key in EVENT_FIELDS if key in values}
    record_events(
        session,
        f"job.{target.value}",
        [(row.id, None, {"job_id": row.id, "name": row.name, "model": row.model, "status": target.value,
                         "attempt": row.attempts, **told}) for row in rows],
    )  # fmt: skip
    if moved and target is JobStatus.running:  # a claim: its attempt's row
        started = values.get("started_at") or utcnow()
        session.execute(
            insert(JobAttempt),
            [{"job_id": job_id, "number": number, "executor": values.get("worker"), "started_at": started}
             for job_id, number in moved],
        )  # fmt: skip
    elif moved:  # the running attempt (a queued job's cancel has none) ends with its job's step
        session.execute(
            update(JobAttempt)
            .where(tuple_(JobAttempt.job_id, JobAttempt.number).in_(moved), JobAttempt.ended_at.is_(None))
            .values(
                ended_at=utcnow(),
                outcome=(outcome or ENDINGS[target]).value,
                steps_done=select(Job.step).where(Job.id == JobAttempt.job_id).scalar_subquery(),
            )
            .execution_options(synchronize_session=False)
        )
    if moved and target in FINISHED:
        ended = [job_id for job_id, _ in moved]
        delete_artifacts(session, Artifact.job_id.in_(ended) & (Artifact.kind == ArtifactKind.checkpoint.value))
    return moved


def transition_sweep(session: Session, sweep_id: int, target: SweepStatus, error: str | None = None) -> bool:
    """Move the sweep to `target` (an ending: its `finished_at`, and its `error` when it failed) in one conditional
    UPDATE, only from a status SWEEP_TRANSITIONS allows, and write its `sweep.finished` event to the outbox in the
    same transaction; whether it moved. Does not commit."""
    allowed = [source.value for source, targets in SWEEP_TRANSITIONS.items() if target in targets]
    moved = session.execute(
        update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.status.in_(allowed))
        .values(status=target.value, finished_at=utcnow(), error=error)
        .returning(Sweep.name)
        .execution_options(synchronize_session=False)
    ).first()
    if moved is None:
        return False
    data = {"sweep_id": sweep_id, "name": moved.name, "status": target.value, "error": error}
    record_event(session, "sweep.finished", data, sweep_id=sweep_id)
    return True
