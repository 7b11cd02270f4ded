"""One delivery, as the Standard Webhooks specification describes it: a JSON body `{type, timestamp, data}`
signed with HMAC-SHA256 (`webhook-id`, `webhook-timestamp`, `webhook-signature` headers; the id is the event's,
the same on every retry, so a receiver drops what it has already seen), and when to try again."""

import json
import time
from datetime import datetime, timedelta

import anyio
import anyio.to_thread
import httpx
from standardwebhooks.webhooks import Webhook as Signer

from store.tables import utcnow
from store.webhooks import ANSWER_CHARS, AttemptOutcome, DueDelivery
from webhooks.addresses import UnsafeUrl, check_url
from webhooks.settings import WebhookSettings

USER_AGENT = "cifar-jobs-webhooks/1"
ANSWER_BYTES = 4 * ANSWER_CHARS  # enough for the kept characters in any UTF-8


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


async def send(
    client: httpx.AsyncClient, due: DueDelivery, settings: WebhookSettings, deadline: float
) -> AttemptOutcome:
    """POST the delivery to the address its URL resolves to now (checked again: DNS may have changed), all of it
    (the name's lookup, connecting, sending, the answer) within `deadline` seconds; of the answer only its first
    ANSWER_BYTES are read (the rest is never received: a receiver answering gigabytes costs nothing)."""
    started = time.monotonic()
    with anyio.move_on_after(deadline) as timer:
        try:
            target = await anyio.to_thread.run_sync(check_url, due.url, settings.webhook_allow_private)
        except UnsafeUrl as exc:
            return AttemptOutcome(None, "", f"refused: the URL {exc}", time.monotonic() - started)
        body = body_of(due)
        headers = signed_headers(due.secret, message_id(due.event_id), body, utcnow())
        headers["host"] = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
        headers["accept-encoding"] = "identity"  # what is read is what was sent: no decompression bomb
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            request = client.build_request("POST", target.url_for(due.url), content=body, headers=headers,
                                           extensions=extensions)  # fmt: skip
            answer = await client.send(request, stream=True)
            try:
                kept = bytearray()
                async for chunk in answer.aiter_raw():
                    kept += chunk
                    if len(kept) >= ANSWER_BYTES:
                        break
            finally:
                await answer.aclose()  # unread: the connection is dropped, not read to its end
        except httpx.HTTPError as exc:
            return AttemptOutcome(None, "", f"{type(exc).__name__}: {exc}", time.monotonic() - started)
        text = bytes(kept[:ANSWER_BYTES]).decode("utf-8", errors="replace")
        return AttemptOutcome(answer.status_code, text, None, time.monotonic() - started)
    assert timer.cancelled_caught
    return AttemptOutcome(None, "", f"no whole answer within {deadline:g} s", time.monotonic() - started)


def retry_at(due: DueDelivery, settings: WebhookSettings) -> datetime | None:
    """When to try a failed delivery again (exponential backoff), or None once the retry window has closed."""
    delay = min(settings.webhook_retry_base_seconds * 2 ** (due.attempt - 1), settings.webhook_retry_max_seconds)
    at = utcnow() + timedelta(seconds=delay)
    if at > due.created_at + timedelta(seconds=settings.webhook_give_up_seconds):
        return None
    return at
