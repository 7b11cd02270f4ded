"""One delivery, as the Standard Webhooks specification describes it: a JSON body `{type, timestamp, data}`
signed with HMAC-SHA256 (`webhook-id`, `webhook-timestamp`, `webhook-signature` headers; the id is the event's,
the same on every retry, so a receiver drops what it has already seen), and when to try again."""

import json
import time
from datetime import datetime, timedelta

import httpx
from standardwebhooks.webhooks import Webhook as Signer

from store.tables import utcnow
from store.webhooks import AttemptOutcome, DueDelivery
from webhooks.addresses import UnsafeUrl, check_url
from webhooks.settings import WebhookSettings

USER_AGENT = "cifar-jobs-webhooks/1"


def message_id(event_id: int) -> str:
    return f"evt_{event_id}"


def body_of(due: DueDelivery) -> bytes:
    message = {"type": due.kind, "timestamp": due.created_at.isoformat(), "data": due.data}
    return json.dumps(message, separators=(",", ":"), sort_keys=True).encode()


def signed_headers(secret: str, msg_id: str, body: bytes, now: datetime) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Signer(secret).sign(msg_id, now, body.decode()),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def send(client: httpx.Client, due: DueDelivery, settings: WebhookSettings) -> AttemptOutcome:
    """POST the delivery to the address its URL resolves to now (checked again: DNS may have changed)."""
    started = time.monotonic()
    try:
        target = check_url(due.url, settings.webhook_allow_private)
    except UnsafeUrl as exc:
        return AttemptOutcome(None, "", f"refused: the URL {exc}", time.monotonic() - started)
    body = body_of(due)
    headers = signed_headers(due.secret, message_id(due.event_id), body, utcnow())
    headers["host"] = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    try:
        answer = client.post(target.url_for(due.url), content=body, headers=headers, extensions=extensions)
    except httpx.HTTPError as exc:
        return AttemptOutcome(None, "", f"{type(exc).__name__}: {exc}", time.monotonic() - started)
    return AttemptOutcome(answer.status_code, answer.text, None, time.monotonic() - started)


def retry_at(due: DueDelivery, settings: WebhookSettings) -> datetime | None:
    """When to try a failed delivery again (exponential backoff), or None once the retry window has closed."""
    delay = min(settings.webhook_retry_base_seconds * 2 ** (due.attempt - 1), settings.webhook_retry_max_seconds)
    at = utcnow() + timedelta(seconds=delay)
    if at > due.created_at + timedelta(seconds=settings.webhook_give_up_seconds):
        return None
    return at
