"""jobs find their identical runs through an indexed hash of what they train; a table the health check
writes to (to see that the database can still be written)

The two hashes are filled for new jobs by the store; the jobs already stored get them from the API when
it starts (it parses each spec once with today's defaults, which this migration cannot import).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("training_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("training_sha256_any_steps", sa.String(length=64), nullable=True))
        batch.create_index("ix_jobs_training_sha256", ["training_sha256"])
        batch.create_index("ix_jobs_training_sha256_any_steps", ["training_sha256_any_steps"])
    op.create_table(
        "health_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_checks")),
    )


def downgrade() -> None:
    op.drop_table("health_checks")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_training_sha256_any_steps")
        batch.drop_index("ix_jobs_training_sha256")
        batch.drop_column("training_sha256_any_steps")
        batch.drop_column("training_sha256")
