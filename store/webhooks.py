"""Webhooks and their deliveries as stored: subscribe, list, remove; claim a due delivery, record an attempt.

A delivery is claimed with a lease (one conditional UPDATE, SKIP LOCKED on PostgreSQL), so several delivery
processes share the work and one killed mid-send leaves a delivery that another takes once the lease ends:
at least once, never lost. A job's deliveries to one webhook go out in event order: a delivery waits while an
earlier one of the same job to the same webhook is still pending.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from store.errors import StoreError
from store.outbox import record_event
from store.tables import DeliveryStatus, JobEvent, Webhook, WebhookDelivery, utcnow

ATTEMPTS_KEPT = 50  # per delivery, the newest
ANSWER_CHARS = 500  # of a receiver's answer, kept with the attempt


class WebhookNotFound(StoreError):
    def __init__(self, webhook_id: int) -> None:
        super().__init__(f"webhook {webhook_id} not found (GET /webhooks lists the webhooks there are)")
        self.webhook_id = webhook_id


def create_webhook(session: Session, url: str, events: list[str], secret: str) -> Webhook:
    webhook = Webhook(url=url, events=events, secret=secret, created_at=utcnow())
    session.add(webhook)
    session.flush()
    return webhook


def find_webhook(session: Session, webhook_id: int) -> Webhook:
    webhook = session.get(Webhook, webhook_id, populate_existing=True)
    if webhook is None:
        raise WebhookNotFound(webhook_id)
    return webhook


def list_webhooks(session: Session) -> list[Webhook]:
    return list(session.scalars(select(Webhook).order_by(Webhook.id)))


def delete_webhook(session: Session, webhook_id: int) -> None:
    """The webhook and its deliveries (owed or not)."""
    find_webhook(session, webhook_id)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id))
    session.execute(delete(Webhook).where(Webhook.id == webhook_id))


def owe_test_event(session: Session, webhook_id: int) -> int:
    """A `webhook.test` event owed to this webhook alone; its id."""
    webhook = find_webhook(session, webhook_id)
    event_id = record_event(
        session, "webhook.test", {"webhook_id": webhook.id, "message": "a test delivery"}, only_webhook=webhook.id
    )
    return event_id


def deliveries_of(
    session: Session, webhook_id: int, limit: int, offset: int
) -> tuple[list[tuple[WebhookDelivery, JobEvent]], int]:
    """A webhook's deliveries with their events, newest first, and how many there are."""
    find_webhook(session, webhook_id)
    mine = WebhookDelivery.webhook_id == webhook_id
    count = session.scalar(select(func.count()).select_from(WebhookDelivery).where(mine)) or 0
    rows = session.execute(
        select(WebhookDelivery, JobEvent)
        .join(JobEvent, JobEvent.id == WebhookDelivery.event_id)
        .where(mine)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [(row[0], row[1]) for row in rows], count


@dataclass(frozen=True)
class DueDelivery:
    """A claimed delivery and what sending it needs. `attempt` fences the outcome: a deliverer whose lease
    ran out (and whose delivery another claimed) records nothing."""

    id: int
    attempt: int
    webhook_id: int
    url: str
    secret: str
    event_id: int
    kind: str
    data: dict[str, Any]
    created_at: datetime


def claim_due_delivery(
    session: Session, lease_seconds: float, busy_webhooks: Collection[int] = ()
) -> DueDelivery | None:
    """Take the oldest pending delivery that is due, not leased, not to one of `busy_webhooks` (those the caller
    sends as many to as it may at once) and not behind an earlier pending delivery of the same job to the same
    webhook; lease it for `lease_seconds`."""
    now = utcnow()
    earlier = aliased(WebhookDelivery)
    behind = exists().where(
        earlier.webhook_id == WebhookDelivery.webhook_id,
        earlier.job_id == WebhookDelivery.job_id,
        earlier.id < WebhookDelivery.id,
        earlier.status == DeliveryStatus.pending.value,
    )
    free = WebhookDelivery.leased_until.is_(None) | (WebhookDelivery.leased_until < now)
    candidate = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == DeliveryStatus.pending.value, WebhookDelivery.next_attempt_at <= now, free)
        .where(~behind, WebhookDelivery.webhook_id.not_in(busy_webhooks))
        .order_by(WebhookDelivery.id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidate = candidate.with_for_update(skip_locked=True, of=WebhookDelivery)
    claimed = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == candidate.scalar_subquery(),
            WebhookDelivery.status == DeliveryStatus.pending.value,
            free,
        )
        .values(leased_until=now + timedelta(seconds=lease_seconds), attempts=WebhookDelivery.attempts + 1)
        .returning(WebhookDelivery.id, WebhookDelivery.attempts, WebhookDelivery.webhook_id, WebhookDelivery.event_id)
        .execution_options(synchronize_session=False)
    ).first()
    if claimed is None:
        return None
    webhook = session.get(Webhook, claimed.webhook_id)
    event = session.get(JobEvent, claimed.event_id)
    assert webhook is not None and event is not None  # deleting a webhook deletes its deliveries
    return DueDelivery(
        claimed.id,
        claimed.attempts,
        claimed.webhook_id,
        webhook.url,
        webhook.secret,
        event.id,
        event.kind,
        event.data,
        event.created_at,
    )


@dataclass(frozen=True)
class AttemptOutcome:
    """What one try at a delivery got: a status code and the start of the answer, or an error."""

    status_code: int | None
    answer: str
    error: str | None
    seconds: float

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def record_attempt(session: Session, due: DueDelivery, outcome: AttemptOutcome, retry_at: datetime | None) -> bool:
    """The attempt's outcome: delivered, or pending again until `retry_at`, or failed when `retry_at` is None
    (the retry window has closed). False when the lease was lost (another deliverer has it)."""
    row = session.get(WebhookDelivery, due.id, populate_existing=True)
    if row is None or row.attempts != due.attempt or row.status != DeliveryStatus.pending.value:
        return False
    now = utcnow()
    entry = {
        "attempt": due.attempt,
        "at": now.isoformat(),
        "status_code": outcome.status_code,
        "answer": outcome.answer[:ANSWER_CHARS],
        "error": outcome.error,
        "seconds": round(outcome.seconds, 4),
    }
    values: dict[str, Any] = {"leased_until": None, "attempt_log": [*row.attempt_log, entry][-ATTEMPTS_KEPT:]}
    if outcome.delivered:
        values.update(status=DeliveryStatus.delivered.value, delivered_at=now)
    elif retry_at is None:
        values.update(status=DeliveryStatus.failed.value)
    else:
        values.update(next_attempt_at=retry_at)
    moved = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == due.id, WebhookDelivery.attempts == due.attempt)
        .values(**values)
        .returning(WebhookDelivery.id)
        .execution_options(synchronize_session=False)
    ).first()
    return moved is not None


def pending_counts(session: Session) -> dict[int, int]:
    """Per webhook, how many deliveries it is owed."""
    rows = session.execute(
        select(WebhookDelivery.webhook_id, func.count())
        .where(WebhookDelivery.status == DeliveryStatus.pending.value)
        .group_by(WebhookDelivery.webhook_id)
    )
    return {webhook_id: count for webhook_id, count in rows}


def existing_webhooks(session: Session, webhook_ids: Collection[int]) -> set[int]:
    """Which of these webhooks still exist."""
    return set(session.scalars(select(Webhook.id).where(Webhook.id.in_(webhook_ids))))
