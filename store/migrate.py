"""Applying Alembic's migrations from code, so the API and the workers start on the current schema.

Several processes may start at once; a lock makes one of them migrate while the others wait
(a lock file beside a SQLite database, an advisory lock on PostgreSQL).
"""

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"  # read by Alembic; never imported
PG_MIGRATION_LOCK_ID = 7_310_021


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        database = str(engine.url.database)
        if database.startswith("file:"):  # a URI (`?mode=ro&uri=true`): the file's path is in it
            database = database.removeprefix("file:").split("?", 1)[0]
        lock_path = Path(database + ".migrate.lock")
        with lock_path.open("w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
    elif engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": PG_MIGRATION_LOCK_ID})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": PG_MIGRATION_LOCK_ID})
                conn.commit()
    else:
        yield


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """A connection for the migrations, in one transaction. On SQLite, foreign keys are off meanwhile (as
    SQLite's procedure for rebuilding a table says: dropping a parent table would otherwise cascade to
    its children) and checked before the transaction commits."""
    with _migration_lock(engine), engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # only outside a transaction does it take effect
            conn.commit()
        try:
            with conn.begin():
                yield conn
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"a migration left rows without their parent: {broken[:5]}")
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database's schema up to `revision` (creates every table on a new database)."""
    with _migrating(engine) as conn:
        command.upgrade(alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    with _migrating(engine) as conn:
        command.downgrade(alembic_config(conn), revision)
