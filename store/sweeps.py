"""Sweeps and their trials as stored: create, find, list, add a trial with its job, stop, cancel, finish.

A trial and its job are inserted in one transaction, and (sweep, trial number) is unique: a driver
that restarts, or a second one racing it, can never create a trial, or its job, twice.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.errors import JobFinished, StoreError
from store.jobs import OwnedBy, SubmittedSpec, add_tag_rows, new_job, request_cancel
from store.outbox import EVALUATED
from store.tables import Job, JobEvent, JobStatus, MetricPoint, Sweep, SweepStatus, SweepTrial, utcnow
from store.transitions import FINISHED, transition_sweep


class SweepNotFound(StoreError):
    def __init__(self, sweep_id: int) -> None:
        super().__init__(f"sweep {sweep_id} not found (GET /sweeps lists the sweeps there are)")
        self.sweep_id = sweep_id


class SweepFinished(StoreError):
    """The sweep has already ended, and the request needs a running one."""


class TrialExists(StoreError):
    """Another driver created this trial first."""


def create_sweep(session: Session, name: str | None, spec: dict[str, Any], owner_id: int | None = None) -> Sweep:
    """Insert a running sweep (flushed: it has its id); its driver creates the trials."""
    sweep = Sweep(name=name, spec=spec, status=SweepStatus.running.value, created_at=utcnow(), owner_id=owner_id)
    session.add(sweep)
    session.flush()
    return sweep


def find_sweep(session: Session, sweep_id: int) -> Sweep:
    sweep = session.get(Sweep, sweep_id, populate_existing=True)
    if sweep is None:
        raise SweepNotFound(sweep_id)
    return sweep


def list_sweeps(session: Session, limit: int, offset: int, owned_by: OwnedBy | None = None) -> tuple[list[Sweep], int]:
    """Newest first (only `owned_by`'s, when given), with the total count."""
    conditions = [] if owned_by is None else [owned_by.condition(Sweep.owner_id)]
    count = session.scalar(select(func.count()).select_from(Sweep).where(*conditions)) or 0
    ordered = select(Sweep).where(*conditions).order_by(Sweep.id.desc())
    return list(session.scalars(ordered.limit(limit).offset(offset))), count


def running_sweep_ids(session: Session) -> list[int]:
    return list(session.scalars(select(Sweep.id).where(Sweep.status == SweepStatus.running.value).order_by(Sweep.id)))


def sweeps_evaluated(session: Session, after_id: int, through_id: int) -> set[int]:
    """The sweeps with a trial whose job evaluated (a `job.evaluated` event) with an event id in
    (`after_id`, `through_id`]."""
    return set(
        session.scalars(
            select(SweepTrial.sweep_id)
            .join(JobEvent, JobEvent.job_id == SweepTrial.job_id)
            .where(JobEvent.id > after_id, JobEvent.id <= through_id, JobEvent.kind == EVALUATED)
            .distinct()
        )
    )


@dataclass(frozen=True)
class TrialView:
    """A trial with what the driver and the leaderboard read of its job."""

    trial: SweepTrial
    job: Job | None  # None when the trial's spec was refused, or its job was deleted

    @property
    def status(self) -> str:
        if self.job is not None:
            return self.job.status
        return JobStatus.failed.value if self.trial.error else "deleted"

    @property
    def active(self) -> bool:
        return self.job is not None and JobStatus(self.job.status) not in FINISHED


def sweep_trials(session: Session, sweep_id: int) -> list[TrialView]:
    """The sweep's trials in number order, each with its job as stored now."""
    rows = session.execute(
        select(SweepTrial, Job)
        .outerjoin(Job, Job.id == SweepTrial.job_id)
        .where(SweepTrial.sweep_id == sweep_id)
        .order_by(SweepTrial.number)
        .execution_options(populate_existing=True)
    )
    return [TrialView(trial, job) for trial, job in rows]


def evaluations(session: Session, job_ids: Sequence[int], metric: str) -> dict[int, list[tuple[int, float]]]:
    """Each job's test evaluations of `metric` ("accuracy" or "loss") as (step, value) in step order."""
    found: dict[int, list[tuple[int, float]]] = defaultdict(list)
    if not job_ids:
        return found
    column = MetricPoint.accuracy if metric == "accuracy" else MetricPoint.loss
    rows = session.execute(
        select(MetricPoint.job_id, MetricPoint.step, column)
        .where(MetricPoint.job_id.in_(list(job_ids)), MetricPoint.split == "test")
        .order_by(MetricPoint.job_id, MetricPoint.step)
    )
    for job_id, step, value in rows:
        found[job_id].append((step, value))
    return found


def add_trial(
    session: Session,
    sweep_id: int,
    number: int,
    params: dict[str, Any],
    search_state: dict[str, Any],
    spec: SubmittedSpec | None,
    error: str | None = None,
) -> bool:
    """Insert trial `number` and, with a spec, its queued job.

    False when the sweep no longer runs: the sweep's row is locked first (a no-op update), so a cancel that
    commits before this transaction is seen, and one that comes after it cancels this trial's job with the
    others. Raises TrialExists when that trial exists already (another driver made it first): the caller's
    transaction is over."""
    still_running = session.execute(
        update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.status == SweepStatus.running.value)
        .values(name=Sweep.name)  # a write that changes nothing: the row's lock
        .returning(Sweep.id, Sweep.owner_id)
        .execution_options(synchronize_session=False)
    ).first()
    if still_running is None:
        return False
    job_id = None
    if spec is not None:
        job = new_job(spec, owner_id=still_running.owner_id)  # the sweep's owner owns its trials
        session.add(job)
        session.flush()
        add_tag_rows(session, job)  # the base spec's tags: every trial carries them
        job_id = job.id
    session.add(
        SweepTrial(
            sweep_id=sweep_id,
            number=number,
            job_id=job_id,
            params=params,
            search_state=search_state,
            pruned_through_step=0,
            error=error,
        )
    )
    try:
        session.flush()
    except IntegrityError as exc:
        raise TrialExists(f"sweep {sweep_id} has a trial {number} already") from exc
    return True


def record_pruning(session: Session, trial_id: int, through_step: int, search_state: dict[str, Any]) -> None:
    """The evaluations up to `through_step` were shown to the pruner, which left this state. No commit."""
    session.execute(
        update(SweepTrial)
        .where(SweepTrial.id == trial_id, SweepTrial.pruned_through_step < through_step)
        .values(pruned_through_step=through_step, search_state=search_state)
        .execution_options(synchronize_session=False)
    )


def request_early_stop(session: Session, job_id: int) -> None:
    """Ask a running trial to stop and keep its model (it ends stopped_early). No commit."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_([JobStatus.running.value, JobStatus.queued.value]))
        .values(early_stop_requested=True)
        .execution_options(synchronize_session=False)
    )


def finish_sweep(session: Session, sweep_id: int, error: str | None = None) -> None:
    """A running sweep whose trials have all ended (finished), or that cannot go on (failed, with the
    `error` that says why; its queued and running trials are cancelled)."""
    transition_sweep(session, sweep_id, SweepStatus.finished if error is None else SweepStatus.failed, error)
    if error is not None:
        _cancel_active_trials(session, sweep_id)


def cancel_sweep(session: Session, sweep_id: int) -> Sweep:
    """Stop creating trials and cancel the queued and running ones (they keep their points).

    Raises SweepNotFound, or SweepFinished for a sweep that has already ended."""
    sweep = find_sweep(session, sweep_id)
    if not transition_sweep(session, sweep_id, SweepStatus.cancelled):
        raise SweepFinished(
            f"sweep {sweep_id} has already ended ({sweep.status}); only a running sweep can be cancelled"
        )
    _cancel_active_trials(session, sweep_id)
    return find_sweep(session, sweep_id)


def _cancel_active_trials(session: Session, sweep_id: int) -> None:
    for view in sweep_trials(session, sweep_id):
        if view.active and view.job is not None:
            try:
                request_cancel(session, view.job.id)
            except JobFinished:  # it ended meanwhile
                pass
