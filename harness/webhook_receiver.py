"""A webhook receiver on loopback for the tests and benchmarks: it checks each delivery's signature with a
verifier written here from the Standard Webhooks specification (not the library the service signs with),
answers as told, and keeps a log of arrivals and a log of first arrivals by `webhook-id` (the dedup a real
receiver keeps)."""

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_SECONDS = 300  # the specification's suggested window for webhook-timestamp


class BadSignature(ValueError):
    pass


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None) -> dict[str, Any]:
    """The delivery's JSON when its headers sign it, else BadSignature. From the specification: the key is the
    base64 after `whsec_`; the signed content is `{webhook-id}.{webhook-timestamp}.{body}`; `webhook-signature`
    is a space-separated list of `v1,<base64 HMAC-SHA256>`, any of which may match; the timestamp is recent."""
    lowered = {key.lower(): value for key, value in headers.items()}
    msg_id, stamp, signatures = (lowered.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and stamp and signatures):
        raise BadSignature("a webhook-id, webhook-timestamp or webhook-signature header is missing")
    if not stamp.isdigit() or abs((now or time.time()) - int(stamp)) > TOLERANCE_SECONDS:
        raise BadSignature(f"webhook-timestamp {stamp!r} is not within {TOLERANCE_SECONDS} s of now")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    for candidate in signatures.split(" "):
        version, _, encoded = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(base64.b64decode(encoded), expected):
            return json.loads(body)  # type: ignore[no-any-return]
    raise BadSignature("no v1 signature matches")


@dataclass(frozen=True)
class Arrival:
    msg_id: str
    message: dict[str, Any] | None  # None: the signature did not verify
    at: float  # time.time() when it arrived
    error: str | None
    status: int  # what the receiver answered


# How to answer the n-th arrival (from 1) of one webhook-id: a status code, after a wait in seconds.
Policy = Callable[[str, int], tuple[int, float]]


def always_ok(_msg_id: str, _n: int) -> tuple[int, float]:
    return 200, 0.0


class Receiver:
    def __init__(self, secret: str, policy: Policy = always_ok) -> None:
        self.secret, self.policy = secret, policy
        self.arrivals: list[Arrival] = []
        self.first: dict[str, Arrival] = {}  # the dedup log: each webhook-id once, its first valid arrival
        self.started: list[tuple[str, int]] = []  # (webhook-id, n) of each request as it comes in
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.take(dict(self.headers.items()), body, self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def take(self, headers: dict[str, str], body: bytes, handler: BaseHTTPRequestHandler) -> None:
        msg_id = headers.get("webhook-id") or headers.get("Webhook-Id") or ""
        try:
            message, error = verify(self.secret, headers, body), None
        except (BadSignature, ValueError) as exc:
            message, error = None, str(exc)
        with self._lock:
            seen = sum(1 for started, _ in self.started if started == msg_id) + 1
            self.started.append((msg_id, seen))
        status, wait = self.policy(msg_id, seen) if message is not None else (401, 0.0)
        if wait:
            time.sleep(wait)
        arrival = Arrival(msg_id, message, time.time(), error, status)
        with self._lock:
            self.arrivals.append(arrival)
            if message is not None and 200 <= status < 300:
                self.first.setdefault(msg_id, arrival)
        try:
            handler.send_response(status)
            handler.send_header("content-length", "2")
            handler.end_headers()
            handler.wfile.write(b"ok" if status < 300 else b"no")
        except OSError:  # the sender is gone (killed while it waited)
            pass

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
