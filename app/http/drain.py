"""Reading the rest of a refused request's body, within bounds, before answering.

A server that answers and closes while the client is still sending leaves unread bytes in its socket, and the
kernel then resets the connection: Python's `urllib` (and `requests`, `httpx` on some timings) report `Connection
reset by peer` and never show the answer. Reading on, up to DRAIN_MAX_BYTES and while the client keeps sending
(each chunk within DRAIN_IDLE_SECONDS, all of it within DRAIN_TOTAL_SECONDS), lets every client read the 4xx and
its message. A body that declares more than DRAIN_MAX_BYTES is not read at all (nor one past the other bounds):
its connection is closed after the answer, as before, so that a hostile client's large bodies cost nothing.
"""

import anyio
from starlette.types import Receive, Scope

DRAIN_MAX_BYTES = 16 * 1024 * 1024
DRAIN_IDLE_SECONDS = 1.0
DRAIN_TOTAL_SECONDS = 10.0


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, when it gives a valid one."""
    value = dict(scope.get("headers", [])).get(b"content-length", b"")
    return int(value) if value.isdigit() else None


async def drain(scope: Scope, receive: Receive, max_bytes: int = DRAIN_MAX_BYTES) -> bool:
    """Read and drop the rest of the request's body; True when it was read to its end (the connection can be
    kept), False when a bound stopped it or the body declares more than `max_bytes` (then nothing is read: close
    the connection after the answer)."""
    declared = declared_length(scope)
    if declared is not None and declared > max_bytes:
        return False
    drained = 0
    with anyio.move_on_after(DRAIN_TOTAL_SECONDS):
        while drained <= max_bytes:
            with anyio.move_on_after(DRAIN_IDLE_SECONDS) as idle:
                message = await receive()
            if idle.cancelled_caught or message["type"] != "http.request":
                return False  # the client stopped sending, or went away
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                return True
    return False
