"""Job logs: what each attempt's training process printed, kept bounded (the newest part)."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.errors import JobNotFound
from store.tables import JobLog, utcnow

MAX_LOG_CHARS = 256 * 1024  # per attempt: the newest output is kept


@dataclass(frozen=True)
class LogText:
    attempt: int
    text: str
    truncated: bool


def save_log(session: Session, job_id: int, attempt: int, text: str, truncated: bool = False) -> None:
    """Store (replace) the attempt's output, cut to its newest MAX_LOG_CHARS. Raises JobNotFound when the job is
    gone (deleted once it ended, between its last output and this copy: its logs went with it); the caller's
    transaction is over then."""
    if len(text) > MAX_LOG_CHARS:
        text, truncated = text[-MAX_LOG_CHARS:], True
    text = text.replace("\x00", "")  # PostgreSQL text refuses NUL
    row = session.scalar(select(JobLog).where(JobLog.job_id == job_id, JobLog.attempt == attempt))
    if row is None:
        session.add(JobLog(job_id=job_id, attempt=attempt, text=text, truncated=truncated, updated_at=utcnow()))
    else:
        row.text, row.truncated, row.updated_at = text, truncated, utcnow()
    try:
        session.flush()
    except IntegrityError as exc:  # the job's row is gone (foreign key)
        raise JobNotFound(job_id) from exc


def read_log(session: Session, job_id: int, attempt: int | None) -> LogText | None:
    """The attempt's output (the latest attempt's by default), or None when there is none."""
    query = select(JobLog.attempt, JobLog.text, JobLog.truncated).where(JobLog.job_id == job_id)
    if attempt is not None:
        query = query.where(JobLog.attempt == attempt)
    row = session.execute(query.order_by(JobLog.attempt.desc()).limit(1)).first()
    return LogText(row.attempt, row.text, row.truncated) if row else None
