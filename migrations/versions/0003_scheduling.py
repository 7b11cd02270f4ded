"""job scheduling: priority, attempts limit, timeout, idempotency key

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="3"))
        batch.add_column(sa.Column("timeout_s", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("request_sha256", sa.String(length=64), nullable=True))
        batch.create_unique_constraint(op.f("uq_jobs_idempotency_key"), ["idempotency_key"])
        batch.create_index("ix_jobs_status_priority_id", ["status", "priority", "id"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_status_priority_id")
        batch.drop_constraint(op.f("uq_jobs_idempotency_key"), type_="unique")
        batch.drop_column("request_sha256")
        batch.drop_column("idempotency_key")
        batch.drop_column("timeout_s")
        batch.drop_column("max_attempts")
        batch.drop_column("priority")
