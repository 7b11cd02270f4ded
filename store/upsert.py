"""`INSERT ... ON CONFLICT` in the dialect of the session's database: SQLite's and PostgreSQL's take the same
arguments (`on_conflict_do_update`, `on_conflict_do_nothing`) but come from different modules."""

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_into(session: Session, table: Any) -> postgresql.Insert | sqlite.Insert:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
