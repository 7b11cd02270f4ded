"""One poller whose reads every follower shares: however many clients follow a thing, this process reads it
once per interval. The first follower starts the poller, the last one to leave stops it; each read runs in a
thread, and is kept past a cancel until it ends (`Pollers`), so closing the process waits for it."""

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Coroutine
from functools import partial
from typing import Any, Generic, TypeVar

from fastapi.concurrency import run_in_threadpool

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class Pollers:
    """Poller tasks and their reads in threads, each kept until it ends, so that `close` can wait for them: a
    poller cancelled while its read runs stops waiting at once, but the thread goes on with a database
    connection, and the API disposes its engine after closing the events."""

    def __init__(self) -> None:
        self._polls: set[asyncio.Task[Any]] = set()
        self._reads: set[asyncio.Task[Any]] = set()

    def start(self, poll: Coroutine[Any, Any, None]) -> "asyncio.Task[None]":
        return _kept(self._polls, poll)

    async def read(self, read: Callable[[], R]) -> R:
        """`read()` in a thread; cancelling the poller does not cancel the read (nor does `close`)."""
        return await asyncio.shield(_kept(self._reads, run_in_threadpool(read)))

    async def close(self) -> None:
        """Cancel the pollers, then wait for them and for their reads still in threads."""
        for poll in self._polls:
            poll.cancel()
        await asyncio.gather(*self._polls, *self._reads, return_exceptions=True)


def _kept(tasks: set[asyncio.Task[Any]], work: Coroutine[Any, Any, R]) -> asyncio.Task[R]:
    task = asyncio.create_task(work)
    tasks.add(task)
    task.add_done_callback(_forget)
    task.add_done_callback(tasks.discard)
    return task


def _forget(task: "asyncio.Task[Any]") -> None:
    """Take its outcome, so that a read that failed after its poller was cancelled is not logged as never
    retrieved (a poller still waiting gets the failure through its await; a cancelled one has nobody to tell)."""
    if not task.cancelled():
        task.exception()


def _always(_before: Any, _now: Any) -> bool:
    return True


def _never(_value: Any) -> bool:
    return False


class SharedPoll(Generic[T]):
    """`read()` every `interval` seconds while anyone follows, each value published to every follower.

    `changed(before, now)`: whether a read is news (the first always is); `last(value)`: the poller's final read
    (a finished job); `retry_failures`: a failed read is logged and tried again next interval (else the failure
    ends the poller and every follower's iteration raises it); `published(value, version)` runs before each value
    is published (under the lock followers read with), for state kept per version."""

    def __init__(
        self,
        pollers: Pollers,
        read: Callable[[], T],
        interval: float,
        *,
        changed: Callable[[T | None, T], bool] = _always,
        last: Callable[[T], bool] = _never,
        retry_failures: bool = False,
        published: Callable[[T, int], None] | None = None,
    ) -> None:
        self.pollers, self.read, self.interval = pollers, read, interval
        self.changed, self.last, self.retry_failures, self.published = changed, last, retry_failures, published
        self.latest: T | None = None
        self.version = 0
        self.failure: BaseException | None = None
        self.followers = 0
        self.lock = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        while True:
            try:
                value = await self.pollers.read(self.read)
            except Exception as exc:
                if not self.retry_failures:  # handed to the followers, who end their streams
                    async with self.lock:
                        self.failure = exc
                        self.lock.notify_all()
                    return
                log.warning("a shared read failed (%s: %s); reading again in %g s", type(exc).__name__, exc,
                            self.interval)  # fmt: skip
                await asyncio.sleep(self.interval)
                continue
            async with self.lock:
                if self.version == 0 or self.changed(self.latest, value):
                    if self.published is not None:
                        self.published(value, self.version + 1)
                    self.latest, self.version = value, self.version + 1
                    self.lock.notify_all()
            if self.last(value):
                return
            await asyncio.sleep(self.interval)

    def _moved_on(self, seen: int) -> bool:
        return self.version > seen or self.failure is not None

    async def follow(self, idle_seconds: float | None = None) -> AsyncGenerator[tuple[T, int], None]:
        """Each new value with its version (the newest, for a follower that fell behind); ends after the `last`
        one, or when none came for `idle_seconds`; raises the poller's failure."""
        if self._task is None:
            self._task = self.pollers.start(self._poll())
        self.followers += 1
        seen = 0
        try:
            while True:
                async with self.lock:
                    try:  # not asyncio.wait_for: its inner task, cancelled with the stream, could take the lock
                        # back after this block had released it ("Lock is not acquired", then a lock held for good)
                        async with asyncio.timeout(idle_seconds):
                            await self.lock.wait_for(partial(self._moved_on, seen))
                    except TimeoutError:
                        return
                    if self.failure is not None:
                        raise self.failure
                    value, seen = self.latest, self.version
                assert value is not None
                yield value, seen
                if self.last(value):
                    return
        finally:
            self.followers -= 1
            if self.followers == 0 and self._task is not None:
                self._task.cancel()
                self._task = None
