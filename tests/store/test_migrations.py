"""Every migration upgrades, downgrades and upgrades again, and ends at exactly the tables' schema."""

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

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
