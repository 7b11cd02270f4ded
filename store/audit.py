"""The audit log: who did what, when, from where, written in the transaction of the change it records."""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.tables import AuditEntry, utcnow


def record_audit(
    session: Session,
    user_id: int | None,
    actor: str,
    action: str,
    target: str,
    client: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One entry of the audit log, landing with the caller's change (in its transaction)."""
    session.add(AuditEntry(at=utcnow(), user_id=user_id, actor=actor, action=action, target=target, client=client,
                           detail=detail))  # fmt: skip


def audit_page(session: Session, limit: int, offset: int) -> tuple[list[AuditEntry], int]:
    """Entries newest first, with their total count."""
    count = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
    entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset))
    return list(entries), count
