"""Live events of a job for server-sent events: status changes, progress, new points, the end.

However many clients follow a job, this process reads it once per interval: one poller per followed
job publishes each read (a `JobView`) to every follower, and each follower sends what is new to its
client. Every event's id is the last step whose points the client has: a client that reconnects
with `Last-Event-ID` gets every later point exactly once. Status changes come from the job-events
outbox, read on from an id: a stream tells each move in order, even several between two reads (a job
handed back and claimed again), not only the status each read finds.
"""

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, TypeVar

import numpy as np
import orjson
from cachetools import LRUCache
from sse_starlette import ServerSentEvent

from app.curves.shared_poll import Pollers, SharedPoll
from app.curves.views import JobCurves, JobView
from app.runtime.pools import WorkPool

log = logging.getLogger(__name__)

T = TypeVar("T")

POINTS_PER_EVENT = 5000  # a client catching up on a long curve gets it in several events


@dataclass
class _JobFeed:
    """One followed job: its shared poll, and every status change it read, with the version it came in."""

    poll: SharedPoll[JobView]
    status_log: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def keep_changes(self, view: JobView, version: int) -> None:
        self.status_log.extend((version, change) for change in view.status_changes)

    def changes_in(self, after: int, through: int) -> list[dict[str, Any]]:
        return [change for version, change in self.status_log if after < version <= through]


class _StatusCursor:
    """A job's reads for its poll: the status changes are read from the outbox from the last one seen on."""

    def __init__(self, curves: JobCurves, job_id: int) -> None:
        self.curves, self.job_id = curves, job_id
        self.cursor: int | Literal["now"] = "now"

    def read(self) -> JobView:
        view = self.curves.view(self.job_id, True, self.cursor)
        if view.status_cursor is not None:
            self.cursor = view.status_cursor
        return view


def _finished(view: JobView) -> bool:
    return view.finished


class JobEvents:
    def __init__(
        self,
        curves: JobCurves,
        interval_seconds: float,
        bulk: WorkPool | None = None,
        page_cache_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        """`bulk`: the pool that builds catch-up pages (its own, one at a time, when not given)."""
        self.curves, self.interval = curves, interval_seconds
        self._feeds: dict[int, _JobFeed] = {}
        self._pollers = Pollers()
        self.bulk = bulk or WorkPool(1)
        self.pages = PageCache(page_cache_bytes, self.bulk)

    async def close(self) -> None:
        await self._pollers.close()

    async def views(self, job_id: int) -> AsyncIterator[tuple[JobView, list[dict[str, Any]]]]:
        """Each new read of the job, shared with every other follower, with the status changes (outbox events)
        since this follower's previous read (none with its first); ends after a finished one."""
        feed = self._feeds.get(job_id)
        if feed is None:  # the first follower starts the poll; the last one to leave stops it
            reads = _StatusCursor(self.curves, job_id)
            poll = SharedPoll(self._pollers, reads.read, self.interval, last=_finished)
            feed = self._feeds[job_id] = _JobFeed(poll)
            poll.published = feed.keep_changes
        told: int | None = None  # the version through which this follower has had the status changes
        try:
            async with aclosing(feed.poll.follow()) as views:  # closed with this one: its follower leaves at once
                async for view, version in views:
                    changes = [] if told is None else feed.changes_in(told, version)
                    told = version
                    yield view, changes
        finally:
            if feed.poll.followers == 0 and self._feeds.get(job_id) is feed:
                del self._feeds[job_id]

    async def stream(
        self, job_id: int, last_event_id: int | None, idle_seconds: float | None = None
    ) -> AsyncIterator[dict[str, Any] | bytes]:
        """The events for one client, as sse-starlette expects them. A catch-up on a long curve comes in
        pages of POINTS_PER_EVENT points, aligned on the curve: each whole page of settled points is
        serialised once, in a worker thread (never on the event loop), and kept for every other client
        that catches up on the same job. A stream that had nothing to send for `idle_seconds` ends (the
        client reconnects)."""
        cursor = -1 if last_event_id is None else last_event_id
        sent_status: str | None = None
        sent_progress: dict[str, Any] | None = None
        sent_alerts = 0
        sent_system: dict[str, Any] | None = None
        last_sent = time.monotonic()
        async for view, changes in self.views(job_id):
            for change in changes:  # each move since the last read, in order: a job handed back and claimed
                if change.get("preempted"):  # it gave its place (its move back to queued came just before)
                    yield _event("preempted", cursor, {"attempt": change["attempt"], "step": change["step"]})
                    last_sent = time.monotonic()
                    continue
                if change["status"] != sent_status:  # again between two reads shows both
                    sent_status = change["status"]
                    body = {"status": sent_status, "attempts": change["attempt"], "error": change.get("error")}
                    yield _event("status", cursor, body)
                    last_sent = time.monotonic()
            if not changes and view.status != sent_status:  # the first read (or a move its cursor passed)
                sent_status = view.status
                body = {"status": view.status, "attempts": view.attempts, "error": view.error}
                yield _event("status", cursor, body)
                last_sent = time.monotonic()
            fresh = view.settled_after(cursor)
            if len(fresh):
                async for page_cursor, page in self._pages_of(view, int(fresh[0]), int(fresh[-1]) + 1):
                    cursor = page_cursor
                    yield page
                last_sent = time.monotonic()
            for alert in view.alerts_fired[sent_alerts:]:  # a reconnecting client hears each fired rule again
                yield _event("alert", cursor, alert)
                sent_alerts += 1
                last_sent = time.monotonic()
            if view.latest_system is not None and view.latest_system != sent_system:
                sent_system = view.latest_system
                yield _event("system", cursor, view.latest_system)
                last_sent = time.monotonic()
            progress = view.progress()
            if progress != sent_progress:
                sent_progress = progress
                yield _event("progress", cursor, progress)
                last_sent = time.monotonic()
            if view.finished:
                yield _event("end", cursor, {"status": view.status, "final_metrics": view.final_metrics})
                return
            if idle_seconds is not None and time.monotonic() - last_sent > idle_seconds:
                return

    async def _pages_of(self, view: JobView, start: int, end: int) -> AsyncIterator[tuple[int, bytes]]:
        """(cursor, encoded points event) for the settled points [start, end), page by page."""
        while start < end:
            number = start // POINTS_PER_EVENT
            stop = min((number + 1) * POINTS_PER_EVENT, end)
            from_its_start = start == number * POINTS_PER_EVENT
            # final: a whole page, or a finished job's last one (neither changes again)
            final = from_its_start and (stop == (number + 1) * POINTS_PER_EVENT or (view.finished and stop == end))
            chunk = np.arange(start, stop)
            if final:  # built once for every client catching up, even when they ask together
                page = await self.pages.get_or_build((view.id, number), partial(_points_event, view, chunk))
            else:
                page = await self.bulk.run(_points_event, view, chunk)
            yield int(view.curve.step[stop - 1]), page
            # the page is written: let the loop's other work run before the next one (a page from the cache and a
            # write the client keeps up with never suspend, so many catch-ups would otherwise hold the loop)
            await asyncio.sleep(0)
            start = stop


class PageCache:
    """Encoded pages of settled points (they never change), least recently used dropped past `capacity_bytes`;
    a page asked for while it is being built waits for that build (single flight). Used from the event loop
    only; the builds run in the bulk pool's threads."""

    def __init__(self, capacity_bytes: int, bulk: WorkPool) -> None:
        self.capacity_bytes, self.bulk = capacity_bytes, bulk
        self._pages: LRUCache[tuple[int, int], bytes] = LRUCache(maxsize=max(1, capacity_bytes), getsizeof=len)
        self._building: dict[tuple[int, int], asyncio.Future[bytes]] = {}

    async def get_or_build(self, key: tuple[int, int], build: Callable[[], bytes]) -> bytes:
        page = self._pages.get(key)  # a hit makes it the most recently used
        if page is not None:
            return page
        pending = self._building.get(key)
        if pending is None:
            pending = self._building[key] = asyncio.ensure_future(self.bulk.run(build))
            pending.add_done_callback(partial(self._built, key))
        return await asyncio.shield(pending)  # a client that leaves does not cancel the others' page

    def _built(self, key: tuple[int, int], done: "asyncio.Future[bytes]") -> None:
        del self._building[key]
        if done.cancelled() or done.exception() is not None:
            return
        page = done.result()
        if 0 < len(page) <= self.capacity_bytes:
            self._pages[key] = page  # the least recently used go until it fits


def _event(name: str, cursor: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"event": name, "id": str(cursor), "data": orjson.dumps(body).decode()}  # as /metrics encodes points


def _points_event(view: JobView, chunk: np.ndarray) -> bytes:
    """The points of `chunk` (indices into the view's curve) as one encoded server-sent event."""
    points = [{"step": s, "split": sp, "loss": lo, "accuracy": acc} for s, sp, lo, acc in view.curve.rows(chunk)]
    event = _event("points", int(view.curve.step[chunk[-1]]), {"points": points})
    return ServerSentEvent(**event, sep="\r\n").encode()


class JobsTableEvents:
    """The newest jobs' rows for the web page's table: one read per interval for every client of this
    process; the first event holds every row, later ones only the rows that changed, and `gone` for a row
    no longer among them (deleted, or pushed out by newer jobs)."""

    def __init__(self, read_rows: Callable[[], list[dict[str, Any]]], interval_seconds: float) -> None:
        self._pollers = Pollers()
        self._poll = SharedPoll(self._pollers, read_rows, interval_seconds, changed=_differ, retry_failures=True)

    async def close(self) -> None:
        await self._pollers.close()

    async def stream(
        self, idle_seconds: float | None = None, shown: Callable[[dict[str, Any]], bool] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every row first (those `shown` keeps), then the rows that change; ends when nothing changed for
        `idle_seconds`."""
        sent = dict[int, dict[str, Any]]()
        async with aclosing(self._poll.follow(idle_seconds)) as reads:  # closed with this stream: it leaves at once
            async for rows, _version in reads:
                if shown is not None:
                    rows = [row for row in rows if shown(row)]
                if not sent:
                    yield {"event": "jobs", "data": json.dumps({"jobs": rows}, separators=(",", ":"))}
                else:
                    for row in rows:
                        if sent.get(row["id"]) != row:
                            yield {"event": "job", "data": json.dumps(row, separators=(",", ":"))}
                    now_shown = {row["id"] for row in rows}
                    for gone in sent.keys() - now_shown:  # deleted, or older than the newest rows shown
                        yield {"event": "gone", "data": json.dumps({"id": gone})}
                sent = {row["id"]: row for row in rows}


def _differ(before: list[dict[str, Any]] | None, now: list[dict[str, Any]]) -> bool:
    return before != now


class StreamSlots:
    """At most `limit` event streams open at once in this process: each holds a connection (a file
    descriptor) for as long as its client stays, so without a cap a thousand idle clients exhaust the
    process's descriptors and nothing else is answered. Release is idempotent: both the stream's end
    and the response's background task call it (a client may leave before its stream starts)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.open = limit, 0

    def take(self) -> "Slot | None":
        if self.open >= self.limit:
            return None
        self.open += 1
        return Slot(self)


class Slot:
    def __init__(self, slots: StreamSlots) -> None:
        self._slots, self._held = slots, True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots.open -= 1


async def holding(slot: Slot, events: AsyncIterator[dict[str, Any] | bytes]) -> AsyncIterator[dict[str, Any] | bytes]:
    """`events`, releasing `slot` when they end or the client leaves."""
    try:
        async for event in events:
            yield event
    finally:
        slot.release()
