"""The job-events outbox: what happened, written in the transaction that made it happen.

`record_event` is called by whatever changes the state (`transition` for every status change, the sweep
store when a sweep ends, the reporter when an alert fires), inside that change's transaction. It also owes
the event to each webhook subscribed to its kind, in the same transaction: a crash either keeps the change,
its event and its deliveries, or none of them.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from store.tables import DeliveryStatus, JobEvent, JobStatus, Webhook, WebhookDelivery, utcnow
from store.unit_of_work import unit_of_work

STATUS_KINDS = {f"job.{status.value}" for status in JobStatus}  # what `transition` writes for each move
PREEMPTED = "job.preempted"  # a job gave its place (written after its move back to queued)
EVALUATED = "job.evaluated"  # a job's test evaluations, written with its points
# read by the service's own readers (the sweep driver), never delivered: recording one looks up no webhook
INTERNAL_KINDS = frozenset({EVALUATED})


def record_event(
    session: Session,
    kind: str,
    data: dict[str, Any],
    job_id: int | None = None,
    sweep_id: int | None = None,
    only_webhook: int | None = None,
) -> int:
    """Write one event (and the deliveries it owes); its id. `only_webhook`: owe it to that webhook alone,
    whatever it subscribed to (a test delivery). Does not commit."""
    return record_events(session, kind, [(job_id, sweep_id, data)], only_webhook)[0]


def record_events(
    session: Session,
    kind: str,
    rows: Sequence[tuple[int | None, int | None, dict[str, Any]]],
    only_webhook: int | None = None,
) -> list[int]:
    """Write the events (job_id, sweep_id, data) of one kind and the deliveries they owe; their ids, in order.
    Does not commit."""
    if not rows:
        return []
    now = utcnow()
    ids = [
        session.execute(
            insert(JobEvent)
            .values(kind=kind, job_id=job_id, sweep_id=sweep_id, data=data, created_at=now)
            .returning(JobEvent.id)
        ).scalar_one()
        for job_id, sweep_id, data in rows
    ]
    subscribers = [] if kind in INTERNAL_KINDS else _subscribers(session, kind, only_webhook)
    if subscribers:
        session.execute(
            insert(WebhookDelivery),
            [
                _delivery(webhook_id, event_id, job_id, now)
                for webhook_id in subscribers
                for event_id, (job_id, _, _) in zip(ids, rows, strict=True)
            ],
        )
    return ids


def status_events(session: Session, job_id: int, after_id: int | None) -> tuple[int, list[dict[str, Any]]]:
    """The job's status changes (`job.<status>` events' data: `status`, `attempt`, ...; a preemption's with
    `"preempted": true` and no status) after the event `after_id`, oldest first, and the id to read on from.
    `after_id` None: only that id (a reader that starts now)."""
    if after_id is None:
        return session.scalar(select(func.max(JobEvent.id)).where(JobEvent.job_id == job_id)) or 0, []
    events = events_after(session, after_id, 1000, job_id)  # a job has a few; any more: the next read
    changes = [
        {**event.data, "preempted": True} if event.kind == PREEMPTED else event.data
        for event in events
        if event.kind in STATUS_KINDS or event.kind == PREEMPTED
    ]
    return (events[-1].id if events else after_id), changes


def _subscribers(session: Session, kind: str, only_webhook: int | None) -> list[int]:
    if only_webhook is not None:
        return [only_webhook]
    return [webhook_id for webhook_id, events in session.execute(select(Webhook.id, Webhook.events)) if kind in events]


def _delivery(webhook_id: int, event_id: int, job_id: int | None, now: datetime) -> dict[str, Any]:
    return {
        "webhook_id": webhook_id,
        "event_id": event_id,
        "job_id": job_id,
        "status": DeliveryStatus.pending.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "attempt_log": [],
    }


def newest_event_id(session: Session) -> int:
    """The id of the newest event written so far (0: none)."""
    return session.scalar(select(func.max(JobEvent.id))) or 0


def events_after(session: Session, after_id: int, limit: int, job_id: int | None = None) -> list[JobEvent]:
    """Events with an id above `after_id` (of one job, when given), oldest first."""
    query = select(JobEvent).where(JobEvent.id > after_id)
    if job_id is not None:
        query = query.where(JobEvent.job_id == job_id)
    return list(session.scalars(query.order_by(JobEvent.id).limit(limit)))


def prune_outbox(sessions: sessionmaker[Session], before: datetime, batch: int = 5000) -> tuple[int, int]:
    """Delete the deliveries that ended (delivered, failed) and the events written before `before`, oldest first, a
    batch per unit of work (short transactions); an event a pending delivery still owes stays. (deliveries,
    events) deleted."""
    ended = [DeliveryStatus.delivered.value, DeliveryStatus.failed.value]
    counts = [0, 0]
    owed = select(WebhookDelivery.id).where(WebhookDelivery.event_id == JobEvent.id).exists()
    for i, oldest in enumerate((
        select(WebhookDelivery.id).where(WebhookDelivery.created_at < before, WebhookDelivery.status.in_(ended))
        .order_by(WebhookDelivery.id).limit(batch),
        select(JobEvent.id).where(JobEvent.created_at < before, ~owed).order_by(JobEvent.id).limit(batch),
    )):  # fmt: skip
        table = WebhookDelivery if i == 0 else JobEvent
        while True:
            with unit_of_work(sessions) as session:
                ids = list(session.scalars(oldest))
                if ids:
                    session.execute(delete(table).where(table.id.in_(ids)))
            counts[i] += len(ids)
            if len(ids) < batch:
                break
    return counts[0], counts[1]
