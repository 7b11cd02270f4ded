"""Engines and sessions. SQLite gets WAL (readers never block the writer), a busy timeout and
foreign keys, so the API and several workers can share one file."""

from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from store.blobs import OBJECTS, ObjectStore, object_store_for
from store.settings import StoreSettings

# How long a SQLite statement waits for a lock before "database is locked" (StoreSettings'
# SQLITE_BUSY_TIMEOUT_MS: the tests use a short one to make an outage quickly).
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Connections kept open for reuse: the API serves sync routes from a pool of 40 threads, and a connection
# opened per request (SQLite runs its pragmas on each) or waited for would cost a burst of pollers their
# latency (docs/BENCHMARKS.md, the metrics p99).
POOL_SIZE = 20
MAX_OVERFLOW = 30


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
    cursor.close()


# How long opening a PostgreSQL connection may take, reaching the server to logging in (StoreSettings'
# DATABASE_CONNECT_TIMEOUT_SECONDS). Without one, a server that accepts and never answers, or a host that drops
# packets, holds the caller for minutes: a worker then does not stop when asked, a request never answers.
CONNECT_TIMEOUT_SECONDS = 10


def engine_for(settings: StoreSettings) -> Engine:
    """The engine of the store the settings name, with their SQLite busy timeout and connect timeout."""
    return make_engine(
        settings.resolved_database_url, settings.sqlite_busy_timeout_ms, settings.database_connect_timeout_seconds
    )


def make_engine(
    url: str, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS, connect_timeout_seconds: int = CONNECT_TIMEOUT_SECONDS
) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)  # (a `file:` URI names an existing one)
        engine = create_engine(
            url,
            connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
            pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW,
        )
        event.listen(engine, "connect", partial(_sqlite_pragmas, busy_timeout_ms=busy_timeout_ms))
        return engine
    # a URL's own ?connect_timeout= stands
    timeout = {} if "connect_timeout" in parsed.query else {"connect_timeout": connect_timeout_seconds}
    return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, connect_args=timeout)


def make_session_factory(engine: Engine, objects: ObjectStore | None = None) -> sessionmaker[Session]:
    """Sessions on `engine`; with `objects`, their artifacts' bytes go to that object store (store/blobs.py)."""
    return sessionmaker(engine, expire_on_commit=False, info={OBJECTS: objects})


def session_factory_for(settings: StoreSettings) -> tuple[Engine, sessionmaker[Session]]:
    """The engine of the store the settings name, and its sessions with the settings' ARTIFACT_STORE."""
    engine = engine_for(settings)
    return engine, make_session_factory(engine, object_store_for(settings))
