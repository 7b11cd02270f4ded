"""Every migration upgrades, downgrades and upgrades again, and ends at the models' schema."""

from sqlalchemy import inspect

from app.db.engine import make_engine
from app.db.migrate import downgrade, upgrade
from app.db.tables import Base


def table_columns(engine) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    inspector = inspect(engine)
    return {
        t: {c["name"] for c in inspector.get_columns(t)} for t in inspector.get_table_names() if t != "alembic_version"
    }


def check_up_down_up(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
        expected = {t.name: {c.name for c in t.columns} for t in Base.metadata.sorted_tables}
        assert table_columns(engine) == expected
        downgrade(engine, "base")
        assert table_columns(engine) == {}
        upgrade(engine)
        assert table_columns(engine) == expected
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    check_up_down_up(database_url)
