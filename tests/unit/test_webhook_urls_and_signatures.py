"""Where a webhook may point, and its signatures checked with a verifier written from the specification."""

import base64
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from harness.webhook_receiver import BadSignature, verify
from store.tables import utcnow
from store.webhooks import AttemptOutcome, DueDelivery
from webhooks.addresses import UnsafeUrl, check_url, is_public
from webhooks.sending import body_of, message_id, retry_at, send, signed_headers
from webhooks.settings import WebhookSettings

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef01234567").decode()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8000/hook", "127.0.0.1"),
        ("http://10.1.2.3/hook", "10.1.2.3"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),  # cloud metadata
        ("http://localhost:9/hook", "localhost"),  # a name that resolves to loopback
        ("http://[::1]/hook", "::1"),
        ("http://[::ffff:192.168.0.1]/hook", "192.168.0.1"),  # IPv4 hidden in IPv6
        ("http://100.64.0.1/hook", "100.64.0.1"),  # shared address space
        # IPv6 forms that carry an IPv4 address (issue 40, finding 8): each routes to loopback
        ("http://[2002:7f00:1::]/hook", "2002:7f00:1::"),  # 6to4
        ("http://[64:ff9b::7f00:1]/hook", "64:ff9b::7f00:1"),  # NAT64
        ("http://[64:ff9b:1::7f00:1]/hook", "64:ff9b:1::7f00:1"),  # local-use NAT64
        ("http://[::127.0.0.1]/hook", "::7f00:1"),  # IPv4-compatible
        ("http://[::ffff:0:7f00:1]/hook", "::ffff:0:7f00:1"),  # IPv4-translated
        ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook", "2001:0:4136:e378:8000:63bf:80ff:fffe"),  # Teredo
        ("ftp://example.org/hook", "http or https"),
        ("http://user:pw@8.8.8.8/hook", "user name or password"),
        ("https:///nohost", "no host"),
    ],
)
def test_private_and_odd_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(UnsafeUrl, match=why.replace("[", r"\[").replace(".", r"\.")):
        check_url(url, allow_private=False)


def test_public_addresses_pass_and_private_ones_pass_when_allowed() -> None:
    target = check_url("https://8.8.8.8/hook?x=1", allow_private=False)
    assert (target.scheme, target.host, target.port, str(target.address)) == ("https", "8.8.8.8", 443, "8.8.8.8")
    loopback = check_url("http://localhost:8123/a/b?c=d", allow_private=True)
    assert str(loopback.address) in ("127.0.0.1", "::1")
    assert loopback.url_for("http://localhost:8123/a/b?c=d").endswith(":8123/a/b?c=d")
    assert "localhost" not in loopback.url_for("http://localhost:8123/a/b?c=d")  # it connects to what it checked
    assert not is_public(check_url("http://169.254.169.254/", allow_private=True).address)
    for carrying_a_public_one in ("2002:808:808::", "64:ff9b::808:808"):  # 6to4 and NAT64 of 8.8.8.8
        assert check_url(f"http://[{carrying_a_public_one}]/", allow_private=False).address.version == 6


def _due(event_id: int = 7, attempt: int = 1, created_at: datetime | None = None) -> DueDelivery:
    data = {"job_id": 3, "status": "succeeded", "final_metrics": {"test_accuracy": 0.5}}
    return DueDelivery(1, attempt, 1, "http://x/", SECRET, event_id, "job.succeeded", data, created_at or utcnow())


def test_a_signed_delivery_verifies_and_any_change_breaks_it() -> None:
    due = _due()
    body = body_of(due)
    headers = signed_headers(SECRET, message_id(due.event_id), body, datetime.now(UTC))
    message = verify(SECRET, headers, body)
    assert message["type"] == "job.succeeded" and message["data"]["job_id"] == 3
    assert headers["webhook-id"] == "evt_7"
    with pytest.raises(BadSignature, match="no v1 signature"):
        verify(SECRET, headers, body.replace(b"0.5", b"0.9"))  # the body changed
    with pytest.raises(BadSignature, match="no v1 signature"):
        verify(SECRET, {**headers, "webhook-id": "evt_8"}, body)  # replayed under another id
    other = "whsec_" + base64.b64encode(b"another secret, 24 bytes").decode()
    with pytest.raises(BadSignature, match="no v1 signature"):
        verify(other, headers, body)
    stale = signed_headers(SECRET, "evt_7", body, datetime.now(UTC) - timedelta(minutes=10))
    with pytest.raises(BadSignature, match="not within"):
        verify(SECRET, stale, body)
    # several signatures (a secret being rotated): one matching is enough
    rotated = {**headers, "webhook-signature": "v1,AAAA " + headers["webhook-signature"]}
    assert verify(SECRET, rotated, body) == json.loads(body)


def test_retries_back_off_exponentially_and_stop_when_the_window_closes() -> None:
    settings = WebhookSettings(webhook_retry_base_seconds=2, webhook_retry_max_seconds=60, webhook_give_up_seconds=3600)
    waits = []
    for attempt in range(1, 9):
        at = retry_at(_due(attempt=attempt), settings)
        assert at is not None
        waits.append(round((at - utcnow()).total_seconds()))
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60]
    old = _due(attempt=3, created_at=utcnow() - timedelta(seconds=3595))
    assert retry_at(old, settings) is None  # the next try would fall after the hour: given up


class _NoNetwork(httpx.AsyncBaseTransport):
    """A transport that records every request instead of sending it."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        return httpx.Response(204, stream=httpx.ByteStream(b""))  # as from the network: not yet read


@pytest.mark.parametrize("url", ["http://localhost:9/hook", "http://169.254.169.254/latest"])
def test_a_delivery_checks_the_address_again_and_sends_nothing_to_a_private_one(url: str) -> None:
    transport = _NoNetwork()
    due = DueDelivery(1, 1, 1, url, SECRET, 7, "job.succeeded", {"job_id": 3}, utcnow())

    async def both() -> tuple[AttemptOutcome, AttemptOutcome]:
        async with httpx.AsyncClient(transport=transport) as client:
            refused = await send(client, due, WebhookSettings(webhook_allow_private=False), 10)
            allowed = await send(client, due, WebhookSettings(webhook_allow_private=True), 10)
        return refused, allowed

    refused, allowed = anyio.run(both)
    assert refused.status_code is None and refused.error is not None
    assert refused.error.startswith("refused: the URL its host")
    assert allowed.delivered and len(transport.requests) == 1
    sent = transport.requests[0]
    assert sent.url.host != "localhost"  # sent to the address that was checked, named in the Host header
    assert sent.headers["host"].split(":")[0] == urlsplit(url).hostname
    assert verify(SECRET, dict(sent.headers), sent.content)["data"] == {"job_id": 3}
