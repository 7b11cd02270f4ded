"""idempotency keys per owner: a job's stored key is `<owner id, 0 for nobody>:<the client's key>`, so one user's
key neither finds nor blocks another's job (issue 40, finding 4). The column and its unique constraint stay (on
SQLite, changing a constraint would rebuild the table); the rows are rewritten. A key of over 189 characters
(the header's limit is 189 now) from before is dropped: its job no longer answers a retry.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE jobs SET idempotency_key = NULL WHERE length(idempotency_key) > 189")
    op.execute(
        "UPDATE jobs SET idempotency_key = CAST(COALESCE(owner_id, 0) AS VARCHAR(11)) || ':' || idempotency_key "
        "WHERE idempotency_key IS NOT NULL"
    )


def downgrade() -> None:
    # each key loses its owner again; of two users' equal keys, the newest job's keeps it
    colon = "instr(idempotency_key, ':')" if op.get_bind().dialect.name == "sqlite" else "strpos(idempotency_key, ':')"
    client_key = f"substr(idempotency_key, {colon} + 1)"
    op.execute(
        "UPDATE jobs SET idempotency_key = NULL WHERE idempotency_key IS NOT NULL AND id NOT IN "
        f"(SELECT MAX(id) FROM jobs WHERE idempotency_key IS NOT NULL GROUP BY {client_key})"
    )
    op.execute(f"UPDATE jobs SET idempotency_key = {client_key} WHERE idempotency_key IS NOT NULL")
