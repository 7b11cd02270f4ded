"""executors.role, host, pid, version, started_at: what `GET /executors` shows of each worker and dispatcher.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("role", sa.String(40)),
    ("host", sa.String(200)),
    ("pid", sa.Integer()),
    ("version", sa.String(40)),
    ("started_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("executors", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("executors") as batch:
        for name, _kind in reversed(COLUMNS):
            batch.drop_column(name)
