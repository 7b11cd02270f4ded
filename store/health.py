"""Whether the database can be read and written, and what a database error says about it: read-only,
full, or unavailable (gone, locked past its busy timeout). The API answers 503 with that reason, and
/healthz writes a row to find out (a read alone says "ok" of a read-only or full database)."""

from typing import Literal

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from store.tables import HealthCheck, utcnow
from store.upsert import insert_into

Problem = Literal["read-only", "full", "unavailable"]

READ_ONLY_SIGNS = ("readonly database", "read-only transaction", "read-only file system", "read only")
FULL_SIGNS = ("database or disk is full", "no space left on device", "disk is full", "diskfull")


def database_problem(exc: BaseException) -> Problem | None:
    """What a database error says of the database (None: an error of the statement, not the database)."""
    if not isinstance(exc, DBAPIError):
        return None
    text = f"{type(exc.orig).__name__} {exc.orig}".lower()
    if any(sign in text for sign in READ_ONLY_SIGNS):
        return "read-only"
    if any(sign in text for sign in FULL_SIGNS):
        return "full"
    if isinstance(exc, OperationalError | InterfaceError):
        return "unavailable"
    return None


def describe(problem: Problem) -> str:
    return {
        "read-only": "the database is read-only: nothing can be submitted or changed until it is writable again",
        "full": "the database's disk is full: nothing can be submitted or changed until there is space again",
        "unavailable": "the database does not answer (down, or locked too long): try again shortly",
    }[problem]


def check_readable_and_writable(session: Session) -> None:
    """Read, then write the health row; raises the database's error when it cannot be read or written."""
    session.execute(text("SELECT 1"))
    session.execute(
        insert_into(session, HealthCheck)
        .values(id=1, checked_at=utcnow())
        .on_conflict_do_update(index_elements=[HealthCheck.id], set_={"checked_at": utcnow()})
    )
