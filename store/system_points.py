"""System metrics of training processes: written in batches with the curve points, read by the API."""

from collections.abc import Iterable, Sequence

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from store.tables import SystemPoint

SYSTEM_FIELDS = ("attempt", "step", "seconds", "cpu", "rss_mb", "data_wait", "gpu_util", "gpu_mem_mb")
SystemRow = tuple[int, int, float, float, float, float | None, float | None, float | None]  # SYSTEM_FIELDS


def add_system_points(session: Session, job_id: int, rows: Iterable[SystemRow]) -> None:
    """Insert samples in one statement. No commit."""
    values = [{"job_id": job_id, **dict(zip(SYSTEM_FIELDS, row, strict=True))} for row in rows]
    if values:
        session.execute(insert(SystemPoint), values)


def read_system_points(session: Session, job_id: int) -> Sequence[SystemRow]:
    """The job's samples, attempt by attempt, oldest first."""
    columns = [getattr(SystemPoint, name) for name in SYSTEM_FIELDS]
    query = select(*columns).where(SystemPoint.job_id == job_id).order_by(SystemPoint.id)
    return [tuple(row) for row in session.execute(query)]


def latest_system_point(session: Session, job_id: int) -> SystemRow | None:
    """The job's newest sample, if it has one."""
    columns = [getattr(SystemPoint, name) for name in SYSTEM_FIELDS]
    row = session.execute(
        select(*columns).where(SystemPoint.job_id == job_id).order_by(SystemPoint.id.desc()).limit(1)
    ).first()
    return None if row is None else tuple(row)
