"""The API's pools for heavy work: their threads run at a lower CPU priority than the API's own."""

import asyncio
import os
import threading

from app.runtime.pools import HEAVY_WORK_NICENESS, WorkPool


def test_heavy_work_runs_at_a_lower_priority_and_the_caller_keeps_its_own() -> None:
    def priority_and_thread() -> tuple[int, str]:
        return os.getpriority(os.PRIO_PROCESS, 0), threading.current_thread().name  # 0: the calling thread

    pool = WorkPool(2, "bulk")
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        niceness, thread = asyncio.run(pool.run(priority_and_thread))
    finally:
        asyncio.run(pool.close())
    assert niceness == min(19, before + HEAVY_WORK_NICENESS) and thread.startswith("bulk-pool")
    assert os.getpriority(os.PRIO_PROCESS, 0) == before  # the API's threads are as they were


def test_closing_waits_for_the_work_running_and_drops_the_work_waiting() -> None:
    """The API disposes its engine after closing its pools: work still running then would keep a connection."""
    pool, running, release, ran = WorkPool(1, "bulk"), threading.Event(), threading.Event(), []

    def work(name: str) -> None:
        running.set()
        release.wait(10)
        ran.append(name)

    async def close_while_busy() -> None:
        first = asyncio.ensure_future(pool.run(work, "running"))
        second = asyncio.ensure_future(pool.run(work, "waiting"))  # queued behind the first (one thread)
        await asyncio.to_thread(running.wait, 10)
        closing = asyncio.ensure_future(pool.close())
        await asyncio.sleep(0)  # let close begin: it must still be waiting for the running work
        assert not closing.done()
        release.set()
        await closing
        await asyncio.gather(first, second, return_exceptions=True)

    asyncio.run(close_while_busy())
    assert ran == ["running"]
