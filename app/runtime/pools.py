"""Thread pools of a few slots for one kind of heavy work, apart from the threads that serve polling and
/healthz: a flood of that work queues in its own pool instead of taking theirs.

- `predict`: decoding images and running models for /predict (PREDICT_CONCURRENCY);
- `bulk`: whole curves (JSON pages, CSV), event-stream catch-up pages and plots (BULK_CONCURRENCY).
Both hold the GIL for much of their work: ten such calls at once would each make every small request
wait its turn for the GIL behind all ten, where one or two at a time leave it free between their slices.

Each pool has its own threads, started at a lower CPU priority than the API's (`niceness` more, as the
training processes run at TRAINING_NICE): when the cores are short, the event loop and the small reads
run first and the heavy work takes what is left; on an idle machine it runs as fast as ever. A thread's
priority can be lowered without privileges but not raised again, hence threads of their own rather than
anyio's shared ones. anyio's CapacityLimiter in front: calls beyond the limit wait for a token."""

import asyncio
import contextvars
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import ParamSpec, TypeVar

from anyio import CapacityLimiter

P = ParamSpec("P")
T = TypeVar("T")

HEAVY_WORK_NICENESS = 5


def _lower_priority(niceness: int) -> None:
    """Lower this thread's CPU priority (Linux schedules threads one by one; elsewhere: the process's)."""
    try:
        os.setpriority(
            os.PRIO_PROCESS, threading.get_native_id(), min(19, os.getpriority(os.PRIO_PROCESS, 0) + niceness)
        )
    except OSError:  # not allowed here: the work runs at the API's priority
        pass


class WorkPool:
    def __init__(self, workers: int, name: str = "work", niceness: int = HEAVY_WORK_NICENESS) -> None:
        self.limiter = CapacityLimiter(workers)
        self._threads = ThreadPoolExecutor(workers, f"{name}-pool", initializer=_lower_priority, initargs=(niceness,))

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        async with self.limiter:
            call = partial(contextvars.copy_context().run, partial(function, *args, **kwargs))
            return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    async def close(self) -> None:
        """Drop the work not started and wait for the work running: it may hold a database connection, and the
        engine is disposed next (a connection out then is never closed, only collected)."""
        await asyncio.to_thread(self._threads.shutdown, wait=True, cancel_futures=True)
