"""Every migration upgrades, downgrades and upgrades again, and ends at exactly the tables' schema."""

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from store.engine import make_engine
from store.migrate import downgrade, upgrade
from store.tables import Base


def schema_differences(engine: Engine) -> list[Any]:
    """What Alembic's autogenerate would change to reach the tables' metadata: columns, types,
    nullability, indexes, constraints. Empty when the migrated schema is the declared one."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def user_tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def check_up_down_up(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
        assert schema_differences(engine) == []
        downgrade(engine, "base")
        assert user_tables(engine) == set()
        upgrade(engine)
        assert schema_differences(engine) == []
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    check_up_down_up(empty_database_url)


def test_a_column_the_migrations_lack_is_found(database_url: str) -> None:
    """The comparison sees a difference: a column dropped behind Alembic's back is reported."""
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE jobs DROP COLUMN request_sha256")
        differences = schema_differences(engine)
        assert [d[0] for d in differences] == ["add_column"] and differences[0][3].name == "request_sha256"
    finally:
        engine.dispose()


def test_idempotency_keys_from_before_become_their_owners(empty_database_url: str) -> None:
    """Migration 0017 (issue 40, finding 4): a key stored before belongs to its job's owner afterwards, and back."""
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine, "0016")
        with engine.begin() as connection:
            for job_id, owner, key in ((1, 7, "k1"), (2, None, "k2"), (3, 7, "x" * 195)):
                connection.execute(
                    text(
                        "INSERT INTO jobs (id, model, spec, status, attempts, handed_back, step, max_steps, "
                        "cancel_requested, early_stop_requested, created_at, priority, max_attempts, gpus, cpus, "
                        "idempotency_key, owner_id) VALUES (:id, 'numpy_mlp', '{}', 'queued', 0, 0, 0, 5, false, "
                        "false, '2026-12-01 00:00:00+00:00', 0, 3, 0, 1, :key, :owner)"
                    ),
                    {"id": job_id, "key": key, "owner": owner},
                )
        upgrade(engine)
        with engine.connect() as connection:
            keys: dict[int, str | None] = dict(connection.execute(text("SELECT id, idempotency_key FROM jobs")).all())
        assert keys == {1: "7:k1", 2: "0:k2", 3: None}
        downgrade(engine, "0016")
        with engine.connect() as connection:
            keys = dict(connection.execute(text("SELECT id, idempotency_key FROM jobs")).all())
        assert keys == {1: "k1", 2: "k2", 3: None}
    finally:
        engine.dispose()


def _insert_job(connection: Any, job_id: int | None = None, status: str = "queued") -> None:
    """A job row as SQL writes it (an id given, or the database's next one)."""
    columns = "model, spec, status, attempts, handed_back, step, max_steps, cancel_requested, early_stop_requested, " \
              "created_at, priority, max_attempts, gpus, cpus"  # fmt: skip
    values = "'numpy_mlp', '{}', :status, 0, 0, 0, 5, false, false, '2026-12-01 00:00:00+00:00', 0, 3, 0, 1"
    if job_id is not None:
        columns, values = f"id, {columns}", f":id, {values}"
    connection.execute(text(f"INSERT INTO jobs ({columns}) VALUES ({values})"), {"id": job_id, "status": status})


def test_a_status_or_role_outside_its_enum_is_refused_by_the_database(database_url: str) -> None:
    """Migration 0019 (issue 41): a CHECK constraint on each status column and on users.role."""
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        for statement in (
            "UPDATE jobs SET status = 'finished' WHERE id = 1",  # a sweep's status, not a job's
            "INSERT INTO sweeps (spec, status, created_at) VALUES ('{}', 'done', '2026-12-01 00:00:00+00:00')",
            "INSERT INTO users (name, role, created_at) VALUES ('x', 'root', '2026-12-01 00:00:00+00:00')",
        ):
            with engine.begin() as connection:
                _insert_job(connection, 1)
            with pytest.raises(IntegrityError, match="ck_"), engine.begin() as connection:
                connection.execute(text(statement))
            with engine.begin() as connection:
                connection.execute(text("DELETE FROM jobs"))
    finally:
        engine.dispose()


def test_rebuilding_the_tables_for_their_checks_gives_no_deleted_id_again(empty_database_url: str) -> None:
    """On SQLite migration 0019 rebuilds jobs: the highest id it ever gave stays the highest (0009's promise; on
    PostgreSQL the sequence is left alone)."""
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine, "0018")
        with engine.begin() as connection:
            for _ in range(3):
                _insert_job(connection)
            connection.execute(text("DELETE FROM jobs WHERE id = 3"))
        upgrade(engine)
        with engine.begin() as connection:
            _insert_job(connection)
            assert connection.execute(text("SELECT max(id) FROM jobs")).scalar() == 4
    finally:
        engine.dispose()
