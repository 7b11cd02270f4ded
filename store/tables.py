"""The database schema: jobs, their metric points and artifacts (Alembic's migrations create it)."""

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as UTC; read back timezone-aware (SQLite drops the zone, so it is put back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: use timezone-aware UTC times")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class JobStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    stopped_early = "stopped_early"  # a sweep's pruner ended it; it keeps its points and model


def one_of(column: str, values: type[enum.StrEnum]) -> CheckConstraint:
    """A CHECK that `column` holds one of the enum's values (named `ck_<table>_<column>`)."""
    return CheckConstraint(f"{column} IN ({', '.join(repr(value.value) for value in values)})", name=column)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Ids and steps are 32-bit integer columns; PostgreSQL refuses a larger parameter, so the API caps them.
MAX_INT32 = 2**31 - 1


class Role(enum.StrEnum):
    admin = "admin"  # anything, anyone's
    member = "member"  # submits; changes only what it owns
    viewer = "viewer"  # reads only


class User(Base):
    """A person who uses the service; their tokens are in `tokens`, only as hashes."""

    __tablename__ = "users"
    __table_args__ = (one_of("role", Role), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    quotas: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # an admin's overrides of the default quotas
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # an admin disabled them: tokens refused
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # an admin removed them: their runs stay


class Token(Base):
    """An API token: its SHA-256 (the token itself is shown once, at creation, and never stored)."""

    __tablename__ = "tokens"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: until revoked


class AuditEntry(Base):
    """Who created, cancelled, deleted, changed or revoked what, when, and from where."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(Integer)  # None: the API_KEY, or the local single-user mode
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(100))
    client: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_id", "status", "id"),
        Index("ix_jobs_status_priority_id", "status", "priority", "id"),
        Index("ix_jobs_owner_id_status", "owner_id", "status"),
        Index("ix_jobs_owner_id_created_at", "owner_id", "created_at"),  # quotas: submissions in the last minute
        Index("ix_jobs_owner_id_finished_at", "owner_id", "finished_at"),  # quotas: running time in 7 days
        Index("ix_jobs_started_at", "started_at"),  # fair share: the jobs started lately
        one_of("status", JobStatus),
        {"sqlite_autoincrement": True},  # a deleted job's id is never given to another (links, notes, CSVs)
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(40), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.queued)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    handed_back: Mapped[int] = mapped_column(Integer, default=0)  # attempts the service ended on purpose
    worker: Mapped[str | None] = mapped_column(String(200))
    placement: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # where the executor runs it (a Ray node, ...)
    step: Mapped[int] = mapped_column(Integer, default=0)
    max_steps: Mapped[int] = mapped_column(Integer)
    steps_per_second: Mapped[float | None] = mapped_column(Float)
    images_per_second: Mapped[float | None] = mapped_column(Float)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    early_stop_requested: Mapped[bool] = mapped_column(default=False)  # a sweep's pruner asks it to stop
    preempt_requested: Mapped[bool] = mapped_column(default=False)  # an executor asks it to give its place
    preemptions: Mapped[int] = mapped_column(Integer, default=0)  # times it gave its place (PREEMPT_MAX_TIMES)
    preemptible: Mapped[bool] = mapped_column(default=True)  # from the spec
    error: Mapped[str | None] = mapped_column(Text)
    final_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(Integer)  # from the spec, like max_attempts and timeout_s
    max_attempts: Mapped[int] = mapped_column(Integer)
    timeout_s: Mapped[int | None] = mapped_column(Integer)
    gpus: Mapped[float] = mapped_column(Float, default=0.0)  # from the spec: what an executor must have
    cpus: Mapped[float] = mapped_column(Float, default=1.0)
    # the spec schema version it was written with (models.kinds.common.SPEC_VERSION): only an executor that knows
    # it claims the job
    spec_version: Mapped[int] = mapped_column(Integer, server_default="1")
    # `<owner id, 0 for nobody>:<the client's Idempotency-Key>` (store.jobs.owners_key): unique per owner
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    request_sha256: Mapped[str | None] = mapped_column(String(64))
    # what it trains, hashed (the spec without how it runs; store.jobs.training_identity): identical runs
    # are found by an index, not by parsing every stored spec
    training_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    training_sha256_any_steps: Mapped[str | None] = mapped_column(String(64), index=True)  # max_steps aside
    # when the training process last wrote progress (the `stalled` alert rule reads it), and the spec's alert
    # rules that have fired: [{"rule": index in spec.alerts, "when", "action", "step", "message", "at"}]
    progress_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    alerts_fired: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # what the run depended on beyond its spec (models.reproducibility), written by its training process
    reproducibility: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reproduces: Mapped[int | None] = mapped_column(Integer, index=True)  # the job this one runs again
    reproduction: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the verdict, once both have ended
    # a person's labels (PATCH /jobs/{id}): shown with the job; job_tags holds the same tags for filtering
    tags: Mapped[list[str] | None] = mapped_column(JSON)
    notes: Mapped[str | None] = mapped_column(Text)
    # who submitted it (None: before users existed, or in the single-user mode); users are never deleted. No
    # foreign key: on SQLite one would make the migration rebuild the table (losing AUTOINCREMENT)
    owner_id: Mapped[int | None] = mapped_column(Integer)
    # read with the job in the same query (a LEFT JOIN): the API shows the owner's name with every job
    owner: Mapped["User | None"] = relationship(
        "User", primaryjoin="foreign(Job.owner_id) == User.id", lazy="joined", viewonly=True
    )
    # the sweep trial it is, if any, in the same query too (GET /jobs/{id} is the most polled route)
    trial: Mapped["SweepTrial | None"] = relationship(
        "SweepTrial", primaryjoin="foreign(SweepTrial.job_id) == Job.id", lazy="joined", viewonly=True, uselist=False
    )


class JobTag(Base):
    """One of a job's tags, for `GET /jobs?tag=` (an index, where a JSON list is not one on every database)."""

    __tablename__ = "job_tags"
    __table_args__ = (Index("ix_job_tags_tag_job_id", "tag", "job_id"),)

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)


# 64-bit where rows grow without bound; SQLite's INTEGER PRIMARY KEY is 64-bit already (and must stay
# INTEGER to be the rowid).
BigId = BigInteger().with_variant(Integer, "sqlite")


class MetricPoint(Base):
    __tablename__ = "metric_points"
    __table_args__ = (
        UniqueConstraint("job_id", "split", "step"),
        Index("ix_metric_points_job_id_step", "job_id", "step"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    split: Mapped[str] = mapped_column(String(10))
    loss: Mapped[float] = mapped_column(Float)
    accuracy: Mapped[float] = mapped_column(Float)


class SystemPoint(Base):
    """How hard a job's training process worked at one moment: sampled every SYSTEM_METRICS_SECONDS beside its
    curve points (at most MAX_SYSTEM_POINTS per attempt). GPU fields only when the job runs on a GPU."""

    __tablename__ = "system_points"
    __table_args__ = (Index("ix_system_points_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)  # since the attempt's training process started
    cpu: Mapped[float] = mapped_column(Float)  # CPU time over wall time, as a fraction of the job's `cpus`
    rss_mb: Mapped[float] = mapped_column(Float)  # resident memory of the training process
    data_wait: Mapped[float | None] = mapped_column(Float)  # fraction of step time spent preparing batches
    gpu_util: Mapped[float | None] = mapped_column(Float)  # fraction of time the GPU was busy (NVML)
    gpu_mem_mb: Mapped[float | None] = mapped_column(Float)


class ArtifactKind(enum.StrEnum):
    model = "model"  # the trained weights and what prediction needs
    checkpoint = "checkpoint"  # full training state, for resuming


class Artifact(Base):
    """Binary artifacts, in the database or an object store, so workers and the API share them without a shared disk.

    `data` is deferred: listing jobs or reading sizes and hashes never loads the blob.
    """

    __tablename__ = "artifacts"
    __table_args__ = (
        UniqueConstraint("job_id", "kind"),
        CheckConstraint("(data IS NULL) <> (object_key IS NULL)", name="bytes_or_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    step: Mapped[int] = mapped_column(Integer, default=0)
    # the bytes, or (with ARTIFACT_STORE) NULL and the object's key in `object_key`, never both
    data: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))
    object_key: Mapped[str | None] = mapped_column(String(400), nullable=True)


class Executor(Base):
    """A running worker (or a cluster's dispatcher) and what it can give one job; refreshed while alive."""

    __tablename__ = "executors"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    gpus: Mapped[float] = mapped_column(Float)
    cpus: Mapped[float] = mapped_column(Float)
    spec_version: Mapped[int] = mapped_column(Integer, server_default="1")  # the newest it understands
    # the model kinds it has installed, kind -> its package's version ("" for the built-in ones); NULL: an
    # executor older than kinds as plugins, which has the built-in ones
    kinds: Mapped[dict[str, str] | None] = mapped_column(JSON)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    role: Mapped[str | None] = mapped_column(String(40))  # `worker`, `ray dispatcher`; NULL: an older executor
    host: Mapped[str | None] = mapped_column(String(200))
    pid: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[str | None] = mapped_column(String(40))  # the service's version it runs
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobLog(Base):
    """What an attempt's training process printed (stdout and stderr), the newest part when long."""

    __tablename__ = "job_logs"
    __table_args__ = (UniqueConstraint("job_id", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    truncated: Mapped[bool] = mapped_column(default=False)  # older output was dropped to keep the newest
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AttemptOutcome(enum.StrEnum):
    """How an attempt ended (None while it runs)."""

    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    stopped_early = "stopped_early"
    timed_out = "timed_out"  # past the job's timeout_s: the job failed
    preempted = "preempted"  # it gave its place to a job of a much higher priority: back in the queue
    handed_back = "handed_back"  # its executor stopped: back in the queue
    lost_heartbeat = "lost_heartbeat"  # its executor went silent: back in the queue (or failed, past max_attempts)
    lost = "lost"  # its process ended without saying how (a Ray job lost with its node, say)


class JobAttempt(Base):
    """One attempt at a job: where it ran, when, how it ended, how far it got. The job's row holds the latest."""

    __tablename__ = "attempts"
    __table_args__ = (UniqueConstraint("job_id", "number"), one_of("outcome", AttemptOutcome))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    executor: Mapped[str | None] = mapped_column(String(200))
    placement: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # a Ray node and submission, say
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(20))
    resumed_from_step: Mapped[int | None] = mapped_column(Integer)  # its checkpoint's step (0: from the start)
    steps_done: Mapped[int | None] = mapped_column(Integer)  # the job's step when it ended
    preempted_for: Mapped[int | None] = mapped_column(Integer)  # the job it was asked to give its place to


class Lease(Base):
    """Who does a job that one process at a time may do (the sweep driver), until when; renewed as it works."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    renewals: Mapped[int] = mapped_column(Integer, default=0)  # one a pass: an operator (or a test) sees it work


class SweepStatus(enum.StrEnum):
    running = "running"  # trials are queued, running, or still to be asked for
    finished = "finished"  # every trial has ended
    cancelled = "cancelled"
    failed = "failed"  # it could not go on (its proposals were refused again and again): `error` says why


class Sweep(Base):
    """A hyperparameter search: its request, and whether it still creates and stops trials."""

    __tablename__ = "sweeps"
    __table_args__ = (one_of("status", SweepStatus), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)  # the validated request, defaults filled in
    status: Mapped[str] = mapped_column(String(20), default=SweepStatus.running, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(Integer)  # its trials' owner too (as jobs.owner_id)


class SweepTrial(Base):
    """One trial of a sweep: its number, parameters and job, and the search library's state for it.

    (sweep_id, number) is unique, so two drivers racing to create the same trial cannot both win.
    """

    __tablename__ = "sweep_trials"
    __table_args__ = (UniqueConstraint("sweep_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Optuna's system attributes of the trial (a grid point's id, successive halving's rung values),
    # so that a restarted driver rebuilds the same study
    search_state: Mapped[dict[str, Any]] = mapped_column(JSON)
    pruned_through_step: Mapped[int] = mapped_column(Integer, default=0)  # evaluations shown to the pruner
    error: Mapped[str | None] = mapped_column(Text)  # why the trial has no job (its spec was refused)


class HealthCheck(Base):
    """One row the health check writes, to see that the database can still be written."""

    __tablename__ = "health_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CpuPrecisionVerdict(Base):
    """Whether bfloat16 autocast is faster than float32 on one CPU model: measured once, by the first worker
    on it, then read by every worker and API process on that model, so they all decide alike."""

    __tablename__ = "cpu_precision_verdicts"

    cpu_model: Mapped[str] = mapped_column(String(300), primary_key=True)  # models.training.precision.cpu_model()
    bf16: Mapped[bool]
    speedup: Mapped[float | None] = mapped_column(Float)  # float32 time over bfloat16 time, as measured
    measured_by: Mapped[str] = mapped_column(String(200))
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JobEvent(Base):
    """The outbox: one row for everything that happened (a job's status change, a sweep's end, an alert), written
    in the same transaction as the change itself, with an increasing id. Whatever reacts to what happened
    (webhook deliveries, event streams, the sweep driver) reads it from an id, so nothing is missed across
    restarts. A job's events stay when the job is deleted (a delivery may still be owed for them)."""

    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job_id_id", "job_id", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # job.<status>, job.alert, job.evaluated, sweep.finished, webhook.test
    kind: Mapped[str] = mapped_column(String(40))
    job_id: Mapped[int | None] = mapped_column(Integer)
    sweep_id: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Webhook(Base):
    """A URL told of the events it subscribed to, signed with its secret (the Standard Webhooks scheme)."""

    __tablename__ = "webhooks"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(200))  # never shown again after the answer that created it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeliveryStatus(enum.StrEnum):
    pending = "pending"  # not yet answered with a 2xx; tried again at next_attempt_at
    delivered = "delivered"
    failed = "failed"  # given up: no 2xx within the retry window


class WebhookDelivery(Base):
    """One event owed to one webhook, created with the event (same transaction), and each attempt at it."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),
        one_of("status", DeliveryStatus),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), ForeignKey("job_events.id"))
    job_id: Mapped[int | None] = mapped_column(Integer)  # a job's deliveries go out in event order
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a deliverer is sending it until then
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # each attempt: {"at", "status_code", "answer" (its first characters), "error", "seconds"}; the newest kept
    attempt_log: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
