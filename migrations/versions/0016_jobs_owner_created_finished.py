"""indexes for a user's quota counts: their jobs by creation (submissions in the last minute) and by end (running
time in the last 7 days), so a submission's check reads index ranges, not every job the user has

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_jobs_owner_id_created_at", "jobs", ["owner_id", "created_at"])
    op.create_index("ix_jobs_owner_id_finished_at", "jobs", ["owner_id", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_owner_id_finished_at", table_name="jobs")
    op.drop_index("ix_jobs_owner_id_created_at", table_name="jobs")
