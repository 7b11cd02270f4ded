"""Live events of a job for server-sent events: status changes, progress, new points, the end.

However many clients follow a job, this process reads it once per interval: one poller per followed
job publishes each read (a `JobView`) to every follower, and each follower sends what is new to its
client. Every event's id is the last step whose points the client has: a client that reconnects
with `Last-Event-ID` gets every later point exactly once.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from fastapi.concurrency import run_in_threadpool

from app.services.curves import JobCurves, JobView

POINTS_PER_EVENT = 5000  # a client catching up on a long curve gets it in several events


@dataclass
class _Feed:
    latest: JobView | None = None
    version: int = 0
    followers: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    poller: "asyncio.Task[None] | None" = None
    failure: BaseException | None = None


def _moved_on(feed: _Feed, seen: int) -> bool:
    return feed.version > seen or feed.failure is not None


class JobEvents:
    def __init__(self, curves: JobCurves, interval_seconds: float) -> None:
        self.curves, self.interval = curves, interval_seconds
        self._feeds: dict[int, _Feed] = {}

    async def _poll(self, job_id: int, feed: _Feed) -> None:
        while True:
            try:
                view = await run_in_threadpool(self.curves.view, job_id)
            except Exception as exc:  # handed to the followers, who end their streams
                async with feed.changed:
                    feed.failure = exc
                    feed.changed.notify_all()
                return
            async with feed.changed:
                feed.latest, feed.version = view, feed.version + 1
                feed.changed.notify_all()
            if view.finished:
                return
            await asyncio.sleep(self.interval)

    async def views(self, job_id: int) -> AsyncIterator[JobView]:
        """Each new read of the job, shared with every other follower; ends after a finished one."""
        feed = self._feeds.get(job_id)
        if feed is None:  # the first follower starts the poller; the last one to leave stops it
            feed = self._feeds[job_id] = _Feed()
            feed.poller = asyncio.create_task(self._poll(job_id, feed))
        feed.followers += 1
        seen = 0
        try:
            while True:
                async with feed.changed:
                    await feed.changed.wait_for(partial(_moved_on, feed, seen))
                    if feed.failure is not None:
                        raise feed.failure
                    view, seen = feed.latest, feed.version
                assert view is not None
                yield view
                if view.finished:
                    return
        finally:
            feed.followers -= 1
            if feed.followers == 0 and self._feeds.get(job_id) is feed:
                del self._feeds[job_id]
                if feed.poller is not None:
                    feed.poller.cancel()

    async def stream(self, job_id: int, last_event_id: int | None) -> AsyncIterator[dict[str, Any]]:
        """The events for one client, as sse-starlette expects them."""
        cursor = -1 if last_event_id is None else last_event_id
        sent_status: str | None = None
        sent_progress: dict[str, Any] | None = None
        async for view in self.views(job_id):
            if view.status != sent_status:
                sent_status = view.status
                body = {"status": view.status, "attempts": view.attempts, "error": view.error}
                yield _event("status", cursor, body)
            fresh = view.settled_after(cursor)
            for start in range(0, len(fresh), POINTS_PER_EVENT):
                chunk = fresh[start : start + POINTS_PER_EVENT]
                points = [
                    {"step": s, "split": sp, "loss": lo, "accuracy": acc} for s, sp, lo, acc in view.curve.rows(chunk)
                ]
                cursor = int(view.curve.step[chunk[-1]])
                yield _event("points", cursor, {"points": points})
            progress = view.progress()
            if progress != sent_progress:
                sent_progress = progress
                yield _event("progress", cursor, progress)
            if view.finished:
                yield _event("end", cursor, {"status": view.status, "final_metrics": view.final_metrics})


def _event(name: str, cursor: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"event": name, "id": str(cursor), "data": json.dumps(body, separators=(",", ":"), allow_nan=False)}


class JobsTableEvents:
    """The newest jobs' rows for the web page's table: one read per interval for every client of this
    process; the first event holds every row, later ones only the rows that changed."""

    def __init__(self, read_rows: Callable[[], list[dict[str, Any]]], interval_seconds: float) -> None:
        self.read_rows, self.interval = read_rows, interval_seconds
        self._latest: list[dict[str, Any]] = []
        self._version = 0
        self._followers = 0
        self._changed = asyncio.Condition()
        self._poller: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        while True:
            rows = await run_in_threadpool(self.read_rows)
            async with self._changed:
                if rows != self._latest or self._version == 0:
                    self._latest, self._version = rows, self._version + 1
                    self._changed.notify_all()
            await asyncio.sleep(self.interval)

    def _newer_than(self, version: int) -> bool:
        return self._version > version

    async def stream(self) -> AsyncIterator[dict[str, Any]]:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        self._followers += 1
        seen, sent = 0, dict[int, dict[str, Any]]()
        try:
            while True:
                async with self._changed:
                    await self._changed.wait_for(partial(self._newer_than, seen))
                    rows, seen = self._latest, self._version
                if not sent:
                    yield {"event": "jobs", "data": json.dumps({"jobs": rows}, separators=(",", ":"))}
                else:
                    for row in rows:
                        if sent.get(row["id"]) != row:
                            yield {"event": "job", "data": json.dumps(row, separators=(",", ":"))}
                sent = {row["id"]: row for row in rows}
        finally:
            self._followers -= 1
            if self._followers == 0 and self._poller is not None:
                self._poller.cancel()
                self._poller = None
