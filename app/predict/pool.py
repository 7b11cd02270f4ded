"""The slots that decode images and run models for /predict: a few (PREDICT_CONCURRENCY), apart from the
ones that serve polling and /healthz, so a flood of predictions queues here instead of taking them.

anyio's CapacityLimiter on its worker threads: calls beyond the limit wait for a token, and they never
use the default limiter's tokens, which `run_in_threadpool` (every other route) takes."""

from collections.abc import Callable
from functools import partial
from typing import ParamSpec, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter

P = ParamSpec("P")
T = TypeVar("T")


class PredictPool:
    def __init__(self, workers: int) -> None:
        self.limiter = CapacityLimiter(workers)

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await anyio.to_thread.run_sync(partial(function, *args, **kwargs), limiter=self.limiter)
