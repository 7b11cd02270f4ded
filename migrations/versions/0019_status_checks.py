"""status checks: jobs.status, sweeps.status and webhook_deliveries.status hold one of their enum's values, and
users.role one of the roles (a CHECK constraint each: a wrong value fails at its write, not later at a read).

On SQLite each table is rebuilt (Alembic's batch mode; store/migrate.py turns foreign keys off meanwhile): the
AUTOINCREMENT of jobs, sweeps and users is kept, and so is the highest id each ever gave (sqlite_sequence), so a
deleted job's id is still never given again.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, the values it allows) as they are at this revision; a later migration that adds a value
# replaces the constraint
CHECKS = (
    ("jobs", "status", ("queued", "running", "succeeded", "failed", "cancelled", "stopped_early")),
    ("sweeps", "status", ("running", "finished", "cancelled", "failed")),
    ("webhook_deliveries", "status", ("pending", "delivered", "failed")),
    ("users", "role", ("admin", "member", "viewer")),
)
AUTOINCREMENT = {"jobs", "sweeps", "users"}  # migrations 0009 and 0015


def _rebuild_each(add: bool) -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    for table, column, values in CHECKS:
        kept = AUTOINCREMENT if sqlite else set()
        highest = (
            bind.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = :name"), {"name": table}).scalar()
            if table in kept
            else None
        )
        options = {"table_kwargs": {"sqlite_autoincrement": True}} if table in kept else {}
        with op.batch_alter_table(table, **options) as batch:  # type: ignore[arg-type]
            name = op.f(f"ck_{table}_{column}")
            if add:
                batch.create_check_constraint(name, f"{column} IN ({', '.join(repr(v) for v in values)})")
            else:
                batch.drop_constraint(name, type_="check")
        if highest is not None:
            bind.execute(
                sa.text("UPDATE sqlite_sequence SET seq = MAX(seq, :highest) WHERE name = :name"),
                {"highest": highest, "name": table},
            )


def upgrade() -> None:
    _rebuild_each(add=True)


def downgrade() -> None:
    _rebuild_each(add=False)
