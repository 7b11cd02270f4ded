"""The sweep driver inside the API process: a background task that runs one pass (`sweeps.driver`)
every `SWEEP_INTERVAL_SECONDS`, in a thread so the event loop stays free.

Every API process runs one; passes are safe to overlap (a trial is created once, whoever tries),
so several API workers or replicas need no coordination.
"""

import asyncio
import contextlib
import logging

from fastapi.concurrency import run_in_threadpool
from prometheus_client import Counter
from sqlalchemy.orm import Session, sessionmaker

from sweeps.driver import EvaluationNews, RoomInQueue, advance_all

log = logging.getLogger(__name__)


class SweepDriver:
    def __init__(
        self, sessions: sessionmaker[Session], interval_seconds: float, passes: Counter, room_in_queue: RoomInQueue
    ) -> None:
        self.sessions = sessions
        self.room_in_queue = room_in_queue  # the owner's queued_jobs quota holds trials back too
        self.interval_seconds = interval_seconds
        self.passes = passes  # Prometheus: an operator (or a test) sees the driver is alive
        self.news = EvaluationNews()  # which sweeps evaluated since the last pass (the outbox, from an id)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sweep-driver")

    async def stop(self) -> None:
        """After the pass in progress (its thread cannot be cancelled: the engine is disposed after it)."""
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await run_in_threadpool(advance_all, self.sessions, self.room_in_queue, self.news)
            except Exception:  # the database away for a moment: try again next time
                log.exception("the sweep driver's pass failed")
            self.passes.inc()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval_seconds)
