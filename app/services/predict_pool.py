"""The threads that decode images and run models for /predict: a few, of their own, so that a flood
of predictions queues here instead of taking the threads that serve polling and /healthz."""

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class PredictPool:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="predict")
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0  # the most calls that ever ran at once (never above `workers`)

    def _tracked(self, call: Callable[[], T]) -> T:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            return call()
        finally:
            with self._lock:
                self.running -= 1

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._tracked, partial(function, *args, **kwargs))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
