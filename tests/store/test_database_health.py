"""A database that cannot be written (read-only, or its disk full) is a 503 that says so, and /healthz
reports it, where a read alone once said "ok" while every submission answered 500. In process, on the
real database (SQLite: a read-only connection, a page limit; PostgreSQL: a read-only database)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

import store.engine
from app.main import create_app
from app.settings import ApiSettings
from tests.conftest import local_client


@pytest.fixture
def read_only_url(engine: Engine, database_url: str) -> Iterator[str]:
    """The migrated test database, opened read-only."""
    if engine.dialect.name == "sqlite":
        yield f"sqlite:///file:{engine.url.database}?mode=ro&uri=true"
        return
    name = engine.url.database
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    try:
        yield database_url
    finally:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = off'))


def test_a_read_only_database_is_a_503_that_says_so(tmp_path: Path, read_only_url: str) -> None:
    with local_client(create_app(ApiSettings(data_dir=tmp_path, database_url=read_only_url))) as client:
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["message"].startswith("the database is read-only")
        submitted = client.post("/jobs", json={"model": "torch_mlp"})
        assert submitted.status_code == 503 and "read-only" in submitted.json()["message"]
        assert submitted.headers["retry-after"] == "10"
        assert client.get("/jobs").status_code == 200  # reading still works


def test_a_full_database_is_a_503_that_says_so(
    tmp_path: Path, engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's page limit stands for a full disk")
    pages = engine.connect().execute(text("PRAGMA page_count")).scalar()
    pragmas = store.engine._sqlite_pragmas

    def at_its_page_limit(connection: Any, record: Any, **options: Any) -> None:  # as when the disk is full
        pragmas(connection, record, **options)
        connection.execute(f"PRAGMA max_page_count={pages}")

    monkeypatch.setattr(store.engine, "_sqlite_pragmas", at_its_page_limit)
    with local_client(create_app(ApiSettings(data_dir=tmp_path, database_url=database_url))) as client:
        submitted = client.post("/jobs", json={"model": "torch_mlp", "name": "x" * 200})
        for _ in range(50):  # until the pages run out
            if submitted.status_code != 201:
                break
            submitted = client.post("/jobs", json={"model": "torch_mlp", "name": "x" * 200})
        assert submitted.status_code == 503, submitted.text
        assert submitted.json()["message"].startswith("the database's disk is full")
