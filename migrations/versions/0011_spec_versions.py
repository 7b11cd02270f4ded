"""the spec schema version each job was written with, and the newest each executor knows

A worker older than the API (during an upgrade, say) does not claim a job whose spec it would not
understand; the job waits, saying so. Jobs and executors stored before this migration: version 1.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("jobs", "executors"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("spec_version", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    for table in ("executors", "jobs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("spec_version")
