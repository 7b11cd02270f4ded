"""artifacts.object_key: an artifact's bytes in an object store (ARTIFACT_STORE) instead of `data`, which may be
NULL then; a CHECK holds each row to one of the two.

On SQLite the table is rebuilt (Alembic's batch mode), its blobs copied once.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.add_column(sa.Column("object_key", sa.String(400), nullable=True))
        batch.alter_column("data", existing_type=sa.LargeBinary(), nullable=True)
        batch.create_check_constraint(op.f("ck_artifacts_bytes_or_key"), "(data IS NULL) <> (object_key IS NULL)")


def downgrade() -> None:
    """Refused (the NOT NULL fails) while an artifact is in an object store only."""
    with op.batch_alter_table("artifacts") as batch:
        batch.drop_constraint(op.f("ck_artifacts_bytes_or_key"), type_="check")
        batch.alter_column("data", existing_type=sa.LargeBinary(), nullable=False)
        batch.drop_column("object_key")
