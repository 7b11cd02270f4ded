"""attempts handed back on purpose (not counted against max_attempts); 64-bit metric point ids

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("handed_back", sa.Integer(), nullable=False, server_default="0"))
    if op.get_bind().dialect.name == "postgresql":  # SQLite's INTEGER PRIMARY KEY is 64-bit already
        op.alter_column("metric_points", "id", type_=sa.BigInteger(), existing_type=sa.Integer())
        op.execute("ALTER SEQUENCE metric_points_id_seq AS bigint")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER SEQUENCE metric_points_id_seq AS integer")
        op.alter_column("metric_points", "id", type_=sa.Integer(), existing_type=sa.BigInteger())
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("handed_back")
