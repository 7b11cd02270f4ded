"""ids of jobs and sweeps are never given again after a delete (SQLite AUTOINCREMENT)

SQLite gives a new row the highest id + 1, so deleting the newest job handed its id to the next one;
AUTOINCREMENT keeps the highest id ever used. SQLite cannot add it to a table: the tables are rebuilt
(store.migrate turns foreign keys off around the migrations, so the rebuild cascades nothing). On
PostgreSQL the id sequences never go back already: nothing to do. Ids deleted before this migration
from the top of a table can still come back once.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("jobs", "sweeps")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
