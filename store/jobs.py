"""Jobs as clients see them: submit, find, list, cancel."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.blobs import delete_artifacts
from store.errors import IdempotencyConflict, JobFinished, JobNotFinished, JobNotFound, KeyRaced
from store.tables import (
    Artifact,
    Job,
    JobAttempt,
    JobLog,
    JobStatus,
    JobTag,
    MetricPoint,
    SweepTrial,
    SystemPoint,
    User,
    utcnow,
)
from store.transitions import FINISHED, transition


class SubmittedSpec(Protocol):
    """What the store reads of a validated job spec (the `models` spec classes fit it)."""

    @property
    def model(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def max_steps(self) -> int: ...
    @property
    def priority(self) -> int: ...
    @property
    def max_attempts(self) -> int: ...
    @property
    def timeout_s(self) -> int | None: ...
    @property
    def gpus(self) -> float: ...
    @property
    def cpus(self) -> float: ...
    @property
    def spec_version(self) -> int: ...
    @property
    def preemptible(self) -> bool: ...
    @property
    def tags(self) -> list[str]: ...
    @property
    def notes(self) -> str | None: ...
    def stored_spec(self) -> dict[str, Any]: ...


def spec_sha256(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


# The fields of a spec that say how a job runs (the queue's, and its label), not what it trains.
RUN_FIELDS = frozenset({"name", "priority", "timeout_s", "max_attempts", "gpus", "cpus", "alerts", "preemptible"})


def training_identity(full_spec: dict[str, Any]) -> tuple[str, str]:
    """What decides the trained model, hashed: the spec (every default filled in) without its run fields;
    and the same without max_steps (a run that may be cut short matches a job of any length)."""
    trained = {key: value for key, value in full_spec.items() if key not in RUN_FIELDS}
    any_steps = {key: value for key, value in trained.items() if key != "max_steps"}
    return spec_sha256(trained), spec_sha256(any_steps)


def any_queued(session: Session, models: tuple[str, ...]) -> bool:
    """Whether some job of these model kinds waits in the queue."""
    queued = (Job.status == JobStatus.queued.value) & Job.model.in_(models)
    return session.scalar(select(Job.id).where(queued).limit(1)) is not None


def create_job(
    session: Session, spec: SubmittedSpec, idempotency_key: str | None = None, owner_id: int | None = None
) -> tuple[Job, bool]:
    """Insert a queued job (owned by `owner_id`: None in the single-user mode) and flush it (it has its id);
    returns (job, created).

    With an idempotency key already used for the same spec, returns that first job and False; with the key used
    for another spec, raises IdempotencyConflict. Raises KeyRaced when another transaction inserted a job with
    the same key meanwhile: this one is then over (roll it back), and `job_for_key` in the next finds that job.
    """
    job = new_job(spec, idempotency_key, owner_id)  # the spec dumped and hashed once, here
    if idempotency_key is not None:
        existing = _job_for_key(session, idempotency_key, owner_id, job.request_sha256 or "")
        if existing is not None:
            return existing, False
    session.add(job)
    try:
        session.flush()
    except IntegrityError as exc:  # another request with the same key won the race
        raise KeyRaced(idempotency_key or "") from exc
    add_tag_rows(session, job)
    session.refresh(job)  # as stored, with its owner and sweep trial: one query (else one lazy load each)
    return job, True


def add_tag_rows(session: Session, job: Job) -> None:
    """The index rows of a new (flushed) job's tags, for `GET /jobs?tag=`."""
    session.add_all(JobTag(job_id=job.id, tag=tag) for tag in job.tags or [])


def job_for_key(session: Session, spec: SubmittedSpec, idempotency_key: str, owner_id: int | None) -> Job | None:
    """The job an owner's idempotency key names, when it was for this spec (IdempotencyConflict otherwise)."""
    return _job_for_key(session, idempotency_key, owner_id, spec_sha256(spec.stored_spec()))


def new_job(spec: SubmittedSpec, idempotency_key: str | None = None, owner_id: int | None = None) -> Job:
    """The queued job row of a validated spec, not yet added to a session."""
    stored_spec = spec.stored_spec()
    exact, any_steps = training_identity(stored_spec)
    return Job(
        tags=list(dict.fromkeys(spec.tags)),  # each once, in the order given
        notes=spec.notes,
        name=spec.name,
        model=spec.model,
        spec=stored_spec,
        status=JobStatus.queued.value,
        max_steps=spec.max_steps,
        attempts=0,
        handed_back=0,
        step=0,
        cancel_requested=False,
        early_stop_requested=False,
        preempt_requested=False,
        preemptions=0,
        preemptible=spec.preemptible,
        created_at=utcnow(),
        priority=spec.priority,
        max_attempts=spec.max_attempts,
        timeout_s=spec.timeout_s,
        gpus=spec.gpus,
        cpus=spec.cpus,
        spec_version=spec.spec_version,
        idempotency_key=None if idempotency_key is None else owners_key(owner_id, idempotency_key),
        request_sha256=spec_sha256(stored_spec),
        training_sha256=exact,
        training_sha256_any_steps=any_steps,
        owner_id=owner_id,
    )


FILL_BATCH = 500


def fill_training_identities(
    session: Session, full_spec: Callable[[dict[str, Any]], dict[str, Any]], batch: int = FILL_BATCH
) -> int:
    """Give up to `batch` jobs stored without them (before migration 0010) their training hashes, reading each
    spec through `full_spec` (today's defaults filled in); returns how many were filled (fewer than `batch`: all
    are done)."""
    rows = session.execute(select(Job.id, Job.spec).where(Job.training_sha256.is_(None)).limit(batch)).all()
    for job_id, spec in rows:
        exact, any_steps = training_identity(full_spec(spec))
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(training_sha256=exact, training_sha256_any_steps=any_steps)
            .execution_options(synchronize_session=False)
        )
    return len(rows)


def owners_key(owner_id: int | None, key: str) -> str:
    """An Idempotency-Key as stored: one user's key neither finds nor blocks another's job (migration 0017)."""
    return f"{owner_id or 0}:{key}"


def _job_for_key(session: Session, key: str, owner_id: int | None, digest: str) -> Job | None:
    job = session.scalar(select(Job).where(Job.idempotency_key == owners_key(owner_id, key)))
    if job is not None and job.request_sha256 != digest:
        raise IdempotencyConflict(f"Idempotency-Key {key!r} was already used for a different job spec (job {job.id})")
    return job


def job_if_any(session: Session, job_id: int) -> Job | None:
    """The job as stored now, or None when there is none."""
    return session.get(Job, job_id, populate_existing=True)


def find_job(session: Session, job_id: int) -> Job:
    """The job as stored now (never a stale copy from the session). Raises JobNotFound."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise JobNotFound(job_id)
    return job


@dataclass(frozen=True)
class JobOrder:
    """How a list of jobs is sorted: by a column of the job (`id`, `name`, `status`, `model`, `created_at`), a
    number of its final metrics (`metric`), or a field of its spec (`spec`, a number or a text); jobs without
    the value come last either way, and equal ones newest first."""

    source: Literal["column", "metric", "spec"]
    key: str
    descending: bool = False
    numeric: bool = True  # a spec field: compared as a number, else as text

    def expression(self) -> Any:
        if self.source == "column":
            value = getattr(Job, self.key)
        elif self.source == "metric":
            value = Job.final_metrics[self.key].as_float()
        else:
            value = Job.spec[self.key].as_float() if self.numeric else Job.spec[self.key].as_string()
        return (value.desc() if self.descending else value.asc()).nulls_last()


NEWEST_FIRST = JobOrder("column", "id", descending=True)

ValueKind = Literal["number", "text", "flag", "list"]
OPERATORS = {
    "=": lambda left, right: left == right,
    "!=": lambda left, right: left != right,
    ">": lambda left, right: left > right,
    ">=": lambda left, right: left >= right,
    "<": lambda left, right: left < right,
    "<=": lambda left, right: left <= right,
}


@dataclass(frozen=True)
class JobCondition:
    """One comparison a listed job must meet: a column of the job, a number of its final metrics or a field of
    its spec (`kind` says how its value compares; a list, `hidden_units`, compares as its JSON without spaces,
    the same text SQLite and PostgreSQL give); jobs without the value never match."""

    source: Literal["column", "metric", "spec"]
    key: str
    operator: str  # one of OPERATORS; only = and != for a text, a flag or a list
    value: Any
    kind: ValueKind = "number"

    def expression(self) -> Any:
        if self.source == "column":
            left, right = getattr(Job, self.key), self.value
        elif self.source == "metric":
            left, right = Job.final_metrics[self.key].as_float(), self.value
        elif self.kind == "number":
            left, right = Job.spec[self.key].as_float(), self.value
        elif self.kind == "flag":
            left, right = Job.spec[self.key].as_boolean(), self.value
        elif self.kind == "list":
            left = func.replace(Job.spec[self.key].as_string(), " ", "")
            right = json.dumps(self.value, separators=(",", ":"))
        else:
            left, right = Job.spec[self.key].as_string(), self.value
        return OPERATORS[self.operator](left, right)


@dataclass(frozen=True)
class OwnedBy:
    """Only what this user owns (None: what nobody owns, from the single-user mode or the API_KEY)."""

    user_id: int | None

    def condition(self, column: Any) -> Any:
        return column.is_(None) if self.user_id is None else column == self.user_id


@dataclass(frozen=True)
class JobFilter:
    """Which jobs a list holds: each field given narrows it (a tag through its index; the name's text without
    regard to case)."""

    status: JobStatus | None = None
    model: str | None = None
    tag: str | None = None
    name_contains: str | None = None
    where: tuple[JobCondition, ...] = ()
    owned_by: OwnedBy | None = None
    owner_name: str | None = None  # only the jobs of the user of this name

    def conditions(self) -> list[Any]:
        found: list[Any] = [condition.expression() for condition in self.where]
        if self.owned_by is not None:
            found.append(self.owned_by.condition(Job.owner_id))
        if self.owner_name is not None:
            found.append(Job.owner_id.in_(select(User.id).where(User.name == self.owner_name)))
        if self.status is not None:
            found.append(Job.status == self.status.value)
        if self.model is not None:
            found.append(Job.model == self.model)
        if self.tag is not None:
            found.append(Job.id.in_(select(JobTag.job_id).where(JobTag.tag == self.tag)))
        if self.name_contains is not None:
            escaped = self.name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            found.append(Job.name.ilike(f"%{escaped}%", escape="\\"))
        return found


def list_jobs(
    session: Session, which: JobFilter, limit: int, offset: int, order: JobOrder = NEWEST_FIRST
) -> tuple[list[Job], int]:
    """The jobs `which` selects in `order` (newest first), with the total count that matches."""
    conditions = which.conditions()
    count = session.scalar(select(func.count()).select_from(Job).where(*conditions)) or 0
    ordered = select(Job).where(*conditions).order_by(order.expression(), Job.id.desc())
    jobs = session.scalars(ordered.limit(limit).offset(offset))
    return list(jobs), count


UNCHANGED: Any = object()  # a PATCH field that was not sent


def annotate_job(
    session: Session, job_id: int, name: Any = UNCHANGED, tags: Any = UNCHANGED, notes: Any = UNCHANGED
) -> Job:
    """Set a job's name (in its row and its spec: what it trains is the same), tags or notes, whatever its
    status; fields left UNCHANGED stay. Raises JobNotFound."""
    job = find_job(session, job_id)
    if name is not UNCHANGED:
        job.name = name
        job.spec = {**job.spec, "name": name}
    if tags is not UNCHANGED:
        job.tags = list(dict.fromkeys(tags))  # each once, in the order given
        session.execute(delete(JobTag).where(JobTag.job_id == job_id))
        session.add_all(JobTag(job_id=job_id, tag=tag) for tag in job.tags)
    if notes is not UNCHANGED:
        job.notes = notes
    session.flush()
    return find_job(session, job_id)


def request_cancel(session: Session, job_id: int) -> Job:
    """Cancel a queued job at once; flag a running one (its training loop stops at the next check).

    Raises JobNotFound, or JobFinished for a job that has already finished.
    """
    job = find_job(session, job_id)
    if job.status == JobStatus.queued and transition(
        session, Job.id == job_id, JobStatus.cancelled, [JobStatus.queued]
    ):
        return find_job(session, job_id)
    flagged = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.running.value)
        .values(cancel_requested=True)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ).first()
    job = find_job(session, job_id)
    if flagged is None and job.status in FINISHED:
        raise JobFinished(
            f"job {job_id} has already ended ({job.status}); only queued or running jobs can be cancelled"
        )
    return job


def delete_job(session: Session, job_id: int) -> None:
    """Remove a finished job with its points, logs, checkpoint and model (a sweep keeps the trial, without
    its job). Raises JobNotFound, or JobNotFinished for a queued or running job: cancel it first (nothing is
    changed then).
    """
    job = find_job(session, job_id)
    finished = [status.value for status in FINISHED]
    if job.status not in finished:  # checked first: a running job's rows are not touched (an ended job stays so)
        raise JobNotFinished(
            f"job {job_id} is {job.status}: cancel it first (POST /jobs/{job_id}/cancel), then delete it"
        )
    # children first (the foreign keys cascade too; said here so no database setting leaves rows behind),
    # then the job, still only if it has finished
    session.execute(delete(MetricPoint).where(MetricPoint.job_id == job_id))
    delete_artifacts(session, Artifact.job_id == job_id)  # (their objects go after the commit)
    session.execute(delete(JobLog).where(JobLog.job_id == job_id))
    session.execute(delete(SystemPoint).where(SystemPoint.job_id == job_id))
    session.execute(delete(JobTag).where(JobTag.job_id == job_id))
    session.execute(delete(JobAttempt).where(JobAttempt.job_id == job_id))
    session.execute(update(SweepTrial).where(SweepTrial.job_id == job_id).values(job_id=None))
    gone = session.execute(
        delete(Job)
        .where(Job.id == job_id, Job.status.in_(finished))
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ).first()
    if gone is None:  # the caller's transaction rolls back what went before
        raise JobNotFinished(
            f"job {job_id} is {job.status}: cancel it first (POST /jobs/{job_id}/cancel), then delete it"
        )
    session.expunge_all()


def jobs_trained_as(
    session: Session, exact: list[str], any_steps: list[str], statuses: list[str], owned_by: OwnedBy | None
) -> list[Job]:
    """Newest first, the jobs in one of `statuses` whose training hash is one of `exact` or whose hash
    regardless of steps is one of `any_steps` (with `owned_by`: only those the owner may see)."""
    return list(
        session.scalars(
            select(Job)
            .where(
                Job.training_sha256.in_(exact) | Job.training_sha256_any_steps.in_(any_steps),
                Job.status.in_(statuses),
                *([] if owned_by is None else [owned_by.condition(Job.owner_id)]),
            )
            .order_by(Job.id.desc())
        )
    )
