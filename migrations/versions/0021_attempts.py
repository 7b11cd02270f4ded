"""attempts: a row per attempt at a job (its executor, placement, start and end, outcome, the step it resumed from
and the step it reached). Jobs that ran before this migration get a row for their latest attempt, from their
own columns (their earlier attempts were not kept).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTCOMES = ("succeeded", "failed", "cancelled", "stopped_early", "timed_out", "preempted", "handed_back",
            "lost_heartbeat", "lost")  # fmt: skip


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "attempts",
        sa.Column("id", big_id, nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("executor", sa.String(length=200), nullable=True),
        sa.Column("placement", sa.JSON(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("resumed_from_step", sa.Integer(), nullable=True),
        sa.Column("steps_done", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            f"outcome IN ({', '.join(repr(outcome) for outcome in OUTCOMES)})", name=op.f("ck_attempts_outcome")
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_attempts_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
        sa.UniqueConstraint("job_id", "number", name=op.f("uq_attempts_job_id")),
    )
    op.execute(
        "INSERT INTO attempts (job_id, number, executor, placement, started_at, ended_at, outcome, steps_done) "
        "SELECT id, attempts, worker, placement, started_at, finished_at, "
        "CASE WHEN status IN ('succeeded', 'failed', 'cancelled', 'stopped_early') THEN status "
        "WHEN status = 'queued' THEN 'handed_back' END, "
        "CASE WHEN status = 'running' THEN NULL ELSE step END "
        "FROM jobs WHERE attempts > 0 AND started_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("attempts")
