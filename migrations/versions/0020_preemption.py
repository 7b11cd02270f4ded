"""preemption: a job's `preemptible` (from its spec: true unless an admin said otherwise), how often it gave its
place (`preemptions`, for PREEMPT_MAX_TIMES) and whether an executor asks it to now (`preempt_requested`). Columns
added in place (no table is rebuilt).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("preempt_requested", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("jobs", sa.Column("preemptions", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("jobs", sa.Column("preemptible", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    for column in ("preemptible", "preemptions", "preempt_requested"):  # ALTER TABLE ... DROP COLUMN on both
        op.execute(f"ALTER TABLE jobs DROP COLUMN {column}")  # (SQLite 3.35+: the table is not rebuilt)
