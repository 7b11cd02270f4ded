"""A consistent copy of a SQLite database while the service writes to it (SQLite's online backup API)."""

import sqlite3
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from store.errors import BackupUnsupported


def backup_sqlite(sessions: sessionmaker[Session], target: Path) -> int:
    """Copy the database into `target` (a new SQLite file) in one read transaction: every job, point, checkpoint
    and model as they were at one moment, while workers go on writing (WAL lets them). Its size in bytes.
    Raises BackupUnsupported on another database."""
    engine = sessions.kw["bind"]
    if engine.dialect.name != "sqlite":
        raise BackupUnsupported(
            f"the service's database is {engine.dialect.name}: back it up with pg_dump (`pg_dump -Fc -f cifar.dump "
            "DATABASE`; it holds every job, curve, checkpoint and model) and restore with pg_restore"
        )
    raw = engine.raw_connection()
    try:
        source = raw.driver_connection
        assert isinstance(source, sqlite3.Connection)
        with sqlite3.connect(target) as copy:
            source.backup(copy)  # every page in one step: one snapshot, not restarted by writers
        copy.close()
    finally:
        raw.close()
    return target.stat().st_size
