"""Webhooks as the API shows them: add (the URL checked, a secret made), list, deliveries."""

import base64
import secrets

from sqlalchemy.orm import Session

from app.http.refusals import InvalidField
from app.webhooks.schemas import DeliveriesPublic, DeliveryPublic, WebhookCreated, WebhookPublic, WebhookRequest
from store.tables import DeliveryStatus, Webhook
from store.webhooks import create_webhook, deliveries_of, list_webhooks, pending_counts
from webhooks.addresses import UnsafeUrl, check_url

SECRET_BYTES = 24


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def add_webhook(session: Session, request: WebhookRequest, allow_private: bool) -> WebhookCreated:
    """Refuses a URL that is not http(s) or resolves to a private address (422 naming `url`)."""
    try:
        check_url(request.url, allow_private)
    except UnsafeUrl as exc:
        raise InvalidField("url", str(exc)) from None
    if request.secret is not None:
        try:
            key = base64.b64decode(request.secret.removeprefix("whsec_"), validate=True)
        except ValueError:
            raise InvalidField("secret", "is not base64 after `whsec_`") from None
        if len(key) < 18:
            raise InvalidField("secret", f"holds {len(key)} bytes; at least 18 are needed")
    secret = request.secret or new_secret()
    webhook = create_webhook(session, request.url, list(dict.fromkeys(request.events)), secret)
    return WebhookCreated(**_public(webhook, 0).model_dump(), secret=secret)


def _public(webhook: Webhook, pending: int) -> WebhookPublic:
    return WebhookPublic(id=webhook.id, url=webhook.url, events=webhook.events, created_at=webhook.created_at,
                         pending=pending)  # fmt: skip


def webhooks_public(session: Session) -> list[WebhookPublic]:
    pending = pending_counts(session)
    return [_public(webhook, pending.get(webhook.id, 0)) for webhook in list_webhooks(session)]


def webhook_public(session: Session, webhook: Webhook) -> WebhookPublic:
    return _public(webhook, pending_counts(session).get(webhook.id, 0))


def deliveries_public(session: Session, webhook_id: int, limit: int, offset: int) -> DeliveriesPublic:
    rows, total = deliveries_of(session, webhook_id, limit, offset)
    deliveries = [
        DeliveryPublic(
            id=delivery.id,
            event_id=event.id,
            type=event.kind,
            job_id=event.job_id,
            status=DeliveryStatus(delivery.status).value,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at if delivery.status == DeliveryStatus.pending.value else None,
            created_at=delivery.created_at,
            delivered_at=delivery.delivered_at,
            data=event.data,
            attempt_log=delivery.attempt_log,
        )
        for delivery, event in rows
    ]
    return DeliveriesPublic(deliveries=deliveries, total=total, limit=limit, offset=offset)
