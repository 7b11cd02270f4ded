"""The sweep driver inside the API process: a background task that runs one pass (`sweeps.driver`)
every `SWEEP_INTERVAL_SECONDS`, in a thread so the event loop stays free.

Every API process runs one; passes are safe to overlap (a trial is created once, whoever tries),
so several API workers or replicas need no coordination.
"""

import asyncio
import contextlib
import logging

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from sweeps.driver import advance_all

log = logging.getLogger(__name__)


class SweepDriver:
    def __init__(self, sessions: sessionmaker[Session], interval_seconds: float) -> None:
        self.sessions = sessions
        self.interval_seconds = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sweep-driver")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await run_in_threadpool(advance_all, self.sessions)
            except Exception:  # the database away for a moment: try again next time
                log.exception("the sweep driver's pass failed")
            await asyncio.sleep(self.interval_seconds)
