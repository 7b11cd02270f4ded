"""Following a job's event stream to its end, through keep-alive pings and dropped connections.

The stream (`GET /jobs/{id}/events`) sends `status`, `progress`, `points` and, last, `end`; between them the
server sends keep-alive comments, which arrive as events without data and are skipped. Each event's id is the
last step whose points were sent: when the connection drops, the follower reconnects with `Last-Event-ID` and
the service goes on from there, so no point comes twice. A stream that sends nothing, not even a ping, for
`silence` seconds counts as dropped too: a server that hangs, or a proxy that holds a dead connection open, does
not hold the follower.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from httpx_sse import connect_sse

from cifar_jobs.errors import error_of

RECONNECT_DELAYS = (0.5, 1, 2, 4, 8, 8, 8, 8, 8, 8)  # then give up: about a minute without the service
log = logging.getLogger("cifar_jobs")

OnEvent = Callable[[str, dict[str, Any]], None]


def follow_events(
    http: httpx.Client,
    job_id: int,
    on_event: OnEvent,
    deadline: float | None = None,
    notice: Callable[[str], None] = log.warning,
    silence: float = 60,
) -> bool:
    """Hand each event of the job's stream to `on_event(name, data)` until its `end`: True then; False when the
    monotonic `deadline` passed first. Reconnects (after a refused or cut connection, or `silence` seconds without
    a byte: the service pings every 15 s by default) say so through `notice`."""
    last_event_id: str | None = None
    failures = 0
    while True:
        headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return False
        quiet = silence if left is None else min(silence, left)  # the longest wait for a byte
        try:
            with connect_sse(http, "GET", f"/jobs/{job_id}/events", headers=headers,
                             timeout=httpx.Timeout(30, read=quiet)) as source:  # fmt: skip
                response = source.response
                if response.status_code == 503 and failures < len(RECONNECT_DELAYS):  # busy: wait, again
                    wait = float(response.headers.get("Retry-After", RECONNECT_DELAYS[failures]))
                    notice(f"the service is busy; trying again in {wait:g} s")
                    time.sleep(wait)
                    failures += 1
                    continue
                if not response.is_success:
                    response.read()
                    raise error_of(response)
                failures = 0
                for event in source.iter_sse():
                    if event.id:
                        last_event_id = event.id
                    if event.data:  # else a keep-alive comment: nothing happened
                        on_event(event.event, event.json())
                        if event.event == "end":
                            return True
                    if deadline is not None and time.monotonic() >= deadline:
                        return False
        except httpx.TransportError as exc:  # a refused or dropped connection, a cut stream, a silent one
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if failures == len(RECONNECT_DELAYS):
                raise
            lost = f"nothing came for {silence:g} s" if isinstance(exc, httpx.ReadTimeout) else type(exc).__name__
            notice(f"connection lost ({lost}); reconnecting from step {last_event_id or 0}")
            time.sleep(RECONNECT_DELAYS[failures])
            failures += 1
            continue
        # the server closed the stream without an `end` (it restarted, say): follow it again
        time.sleep(RECONNECT_DELAYS[0])
