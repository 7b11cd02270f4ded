"""executors.kinds: the model kinds each executor has installed (a job of a kind none has waits, saying so).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("executors") as batch:
        batch.add_column(sa.Column("kinds", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("executors") as batch:
        batch.drop_column("kinds")
