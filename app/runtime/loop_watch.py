"""A watch on the API's event loop: when the loop has not run for LOOP_STALL_WARN_SECONDS, it logs where the
loop's thread is (its stack, and the innermost frame of every other thread), and how long the stall lasted when
the loop runs again.

Every request of a process waits while its loop is stalled: a connection that waits past uvicorn's keep-alive
timeout (5 s) is even closed unanswered, since the loop runs its due timers before it reads the sockets. A
stall is found here instead of as a client's "Server disconnected" or a latency percentile. A ticker on the
loop notes the time each time it runs; a thread of its own looks at that time and, when it is too old, takes
the loop thread's stack from `sys._current_frames()` (the thread runs whenever the loop's thread lets the GIL
go; a stall that holds the GIL the whole time, in C code, is reported when it ends, with its length)."""

import asyncio
import logging
import sys
import threading
import time
import traceback
from datetime import datetime

log = logging.getLogger(__name__)
STALLED = "the event loop has not run for"  # how a report begins (harness/loop_stalls.py finds them by it)
LOOP_FRAMES_SHOWN = 25  # the innermost: where it is stuck (uvicorn and asyncio are the outer dozen)


def _thread_stacks(loop_thread: int) -> str:
    """The loop thread's innermost frames, then each other thread's innermost frame."""
    frames = sys._current_frames()  # noqa: SLF001 (documented, for debuggers and watchdogs)
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    lines = []
    if (frame := frames.pop(loop_thread, None)) is not None:
        innermost = traceback.extract_stack(frame, limit=LOOP_FRAMES_SHOWN)
        lines.append("the loop's thread:\n" + "".join(traceback.format_list(innermost)).rstrip())
    for ident, frame in frames.items():
        if ident == threading.get_ident():
            continue  # this watch
        where = traceback.extract_stack(frame, limit=1)[-1]
        lines.append(f"thread {names.get(ident, ident)}: {where.filename}:{where.lineno} in {where.name}")
    return "\n".join(lines)


class LoopWatch:
    def __init__(self, warn_after_seconds: float) -> None:
        self.warn_after = warn_after_seconds
        self._tick_every = warn_after_seconds / 4
        self._last_tick = 0.0  # set by start and each tick
        self._reported_tick = -1.0  # the tick a stall was reported after (one report per stall)
        self._stop = threading.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        """From the loop's thread, with the loop running; nothing when the threshold is 0 (the watch is off)."""
        if self.warn_after <= 0:
            return
        self._last_tick = time.monotonic()
        self._ticker = asyncio.create_task(self._tick(), name="loop-watch")
        self._watcher = threading.Thread(target=self._watch, args=(threading.get_ident(),), name="loop-watch",
                                         daemon=True)  # fmt: skip
        self._watcher.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.cancel()
        if self._watcher is not None:
            await asyncio.to_thread(self._watcher.join)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._tick_every)
            now = time.monotonic()
            late = now - self._last_tick - self._tick_every
            if late >= self.warn_after:
                log.warning("the event loop ran again after a stall of %.2f s", late)
            self._last_tick = now

    def _watch(self, loop_thread: int) -> None:
        while not self._stop.wait(self._tick_every):
            last_tick = self._last_tick
            stalled = time.monotonic() - last_tick - self._tick_every
            if stalled >= self.warn_after and last_tick != self._reported_tick:
                self._reported_tick = last_tick
                since = datetime.fromtimestamp(time.time() - stalled).strftime("%H:%M:%S.%f")[:-3]
                log.warning("%s %.2f s (since %s); %s", STALLED, stalled, since, _thread_stacks(loop_thread))
