"""Executors (local workers, a cluster's dispatcher) as the store knows them: what each can give
one job, refreshed while it runs, so a job that fits none can say why it waits; and where each runs, for
`GET /executors`."""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, delete, func, select
from sqlalchemy.orm import Session

from store.quotas import running_cap_of
from store.tables import Executor, Job, JobStatus, User, utcnow


def alive_since(seconds: float) -> datetime:
    """An executor refreshes its row every heartbeat; one unseen for `seconds` (EXECUTOR_ALIVE_SECONDS)
    has stopped."""
    return utcnow() - timedelta(seconds=seconds)


FORGOTTEN_AFTER = timedelta(days=7)  # an executor unseen this long (killed, never stopped) leaves the list


@dataclass(frozen=True)
class ExecutorAbout:
    """Where an executor runs: what it is, its host and process, the service's version, since when."""

    role: str
    host: str
    pid: int
    version: str
    started_at: datetime


def register_executor(
    session: Session,
    name: str,
    gpus: float,
    cpus: float,
    spec_version: int = 1,
    kinds: Mapping[str, str] | None = None,
    about: ExecutorAbout | None = None,
) -> None:
    """Insert or refresh this executor's row (what one job can get there, the newest spec version it
    understands, the model kinds it has: kind -> version; where it runs), and forget executors unseen for
    FORGOTTEN_AFTER."""
    row = session.get(Executor, name)
    kinds = None if kinds is None else dict(kinds)
    if row is None:
        row = Executor(name=name, gpus=gpus, cpus=cpus, spec_version=spec_version, kinds=kinds, seen_at=utcnow())
        session.add(row)
    else:
        row.gpus, row.cpus, row.spec_version, row.kinds, row.seen_at = gpus, cpus, spec_version, kinds, utcnow()
    if about is not None:
        row.role, row.host, row.pid = about.role, about.host, about.pid
        row.version, row.started_at = about.version, about.started_at
    session.execute(delete(Executor).where(Executor.seen_at < utcnow() - FORGOTTEN_AFTER))


@dataclass(frozen=True)
class ExecutorView:
    name: str
    role: str | None
    host: str | None
    pid: int | None
    version: str | None
    started_at: datetime | None
    seen_at: datetime
    alive: bool
    gpus: float
    cpus: float
    spec_version: int
    kinds: dict[str, str] | None
    running: list[int]  # the jobs it runs now


def list_executors(session: Session, alive_since: datetime) -> list[ExecutorView]:
    """Every executor seen in the last FORGOTTEN_AFTER, the newest seen first, with the jobs it runs now; alive
    when seen at `alive_since` or later."""
    rows = session.scalars(select(Executor).order_by(Executor.seen_at.desc(), Executor.name)).all()
    running: dict[str, list[int]] = defaultdict(list)
    for job_id, worker in session.execute(
        select(Job.id, Job.worker)
        .where(Job.status == JobStatus.running.value, Job.worker.is_not(None))
        .order_by(Job.id)
    ):
        running[str(worker)].append(job_id)  # not None: selected so
    return [ExecutorView(row.name, row.role, row.host, row.pid, row.version, row.started_at, row.seen_at,
                         row.seen_at >= alive_since, row.gpus, row.cpus, row.spec_version, row.kinds,
                         running.get(row.name, [])) for row in rows]  # fmt: skip


def remove_executor(session: Session, name: str) -> None:
    session.execute(delete(Executor).where(Executor.name == name))


def waiting_reason(session: Session, job: Job, alive_since: datetime, running_cap: int | None = None) -> str | None:
    """Why a queued job cannot start now, when no live executor could ever take it or its owner has their cap of
    running jobs (`running_cap`, or their own `running_jobs` quota; not for admins); else None. One query."""
    if job.status != JobStatus.queued:
        return None
    every = session.execute(_EXECUTORS_AND_OWNER, {"alive_since": alive_since, "owner_id": job.owner_id}).all()
    if not every:
        return "no worker is running: start one (make serve, or python -m workers)"
    if every[0].owner_disabled_at is not None:
        return "its owner is disabled: it waits until an admin enables them again (or cancels it)"
    knowing = [row for row in every if row.spec_version >= job.spec_version]
    if not knowing:
        newest = max(row.spec_version for row in every)
        return (f"its spec is of schema version {job.spec_version}, newer than any running worker knows "
                f"({newest}): it waits for a worker of this service's version (upgrade the workers)")  # fmt: skip
    live = [(row.gpus, row.cpus) for row in knowing if row.kinds is None or job.model in row.kinds]
    if not live:
        return (f"no running worker has the model kind {job.model!r} installed: it waits for one (install its "
                "package where the workers run, then restart them)")  # fmt: skip
    if any(job.gpus <= gpus and job.cpus <= cpus for gpus, cpus in live):
        return _owner_at_cap(every[0], running_cap)  # an executor could take it: unless its owner may not
    most_gpus, most_cpus = max(g for g, _ in live), max(c for _, c in live)
    if job.gpus > most_gpus:
        return f"needs {_count(job.gpus, 'GPU')}; the largest running worker has {most_gpus:g}: it waits for one"
    return f"needs {_count(job.cpus, 'CPU')}; the largest running worker has {most_cpus:g}: it waits for one"


def _count(amount: float, unit: str) -> str:
    """1 GPU, 0.5 GPU, 2 GPUs."""
    return f"{amount:g} {unit}" if amount <= 1 else f"{amount:g} {unit}s"


# built once (its compiled form and cache key reused): the live executors, each row with the queued job's owner
# (role, quotas, how many of their jobs run now; NULL for a job owned by nobody): a request reads both at once
_OWNER = User.id == bindparam("owner_id")
_EXECUTORS_AND_OWNER = select(
    Executor.gpus,
    Executor.cpus,
    Executor.spec_version,
    Executor.kinds,
    select(User.role).where(_OWNER).scalar_subquery().label("owner_role"),
    select(User.disabled_at).where(_OWNER).scalar_subquery().label("owner_disabled_at"),
    select(User.quotas).where(_OWNER).scalar_subquery().label("owner_quotas"),
    select(func.count())
    .where(Job.owner_id == bindparam("owner_id"), Job.status == JobStatus.running.value)
    .scalar_subquery()
    .label("owner_running"),
).where(Executor.seen_at >= bindparam("alive_since"))


def _owner_at_cap(row: Row[Any], running_cap: int | None) -> str | None:
    if row.owner_role is None:  # owned by nobody
        return None
    cap = running_cap_of(row.owner_role, row.owner_quotas, running_cap)
    if cap is None or row.owner_running < cap:
        return None
    return (f"quota running_jobs: its owner has {row.owner_running} of {cap} jobs running; it starts when one of "
            "them ends (other users' jobs go first meanwhile)")  # fmt: skip


def count_executors_seen(session: Session, since: datetime) -> int:
    """How many executors were seen at `since` or later."""
    return session.scalar(select(func.count()).select_from(Executor).where(Executor.seen_at >= since)) or 0
