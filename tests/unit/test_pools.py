"""The API's pools for heavy work: their threads run at a lower CPU priority than the API's own."""

import asyncio
import os
import threading

from app.plumbing.pools import HEAVY_WORK_NICENESS, WorkPool


def test_heavy_work_runs_at_a_lower_priority_and_the_caller_keeps_its_own() -> None:
    def priority_and_thread() -> tuple[int, str]:
        return os.getpriority(os.PRIO_PROCESS, 0), threading.current_thread().name  # 0: the calling thread

    pool = WorkPool(2, "bulk")
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        niceness, thread = asyncio.run(pool.run(priority_and_thread))
    finally:
        pool.close()
    assert niceness == min(19, before + HEAVY_WORK_NICENESS) and thread.startswith("bulk-pool")
    assert os.getpriority(os.PRIO_PROCESS, 0) == before  # the API's threads are as they were
