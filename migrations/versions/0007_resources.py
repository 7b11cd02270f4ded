"""jobs' resource requests; the executors that can take them

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("gpus", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("cpus", sa.Float(), nullable=False, server_default="1"))
    op.create_table(
        "executors",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("gpus", sa.Float(), nullable=False),
        sa.Column("cpus", sa.Float(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_executors")),
    )


def downgrade() -> None:
    op.drop_table("executors")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("cpus")
        batch.drop_column("gpus")
