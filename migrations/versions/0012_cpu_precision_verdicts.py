"""one bfloat16 verdict per CPU model, kept

`mixed_precision: auto` used a timing probe at each worker's start, whose answer flipped with the
load; now the first measurement on a CPU model is stored and every later process reads it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cpu_precision_verdicts",
        sa.Column("cpu_model", sa.String(length=300), nullable=False),
        sa.Column("bf16", sa.Boolean(), nullable=False),
        sa.Column("speedup", sa.Float(), nullable=True),
        sa.Column("measured_by", sa.String(length=200), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("cpu_model", name=op.f("pk_cpu_precision_verdicts")),
    )


def downgrade() -> None:
    op.drop_table("cpu_precision_verdicts")
