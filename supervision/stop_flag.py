"""A stop request that signal handlers may set.

threading.Event is not safe there: Event.set takes a lock, and a second signal arriving while the
handler holds it (SIGTERM from a supervisor and from a process-group kill at once) runs the
handler again in the same thread, which then waits for that lock forever. Setting a plain
attribute takes no lock.
"""

import time

WAIT_SLICE_SECONDS = 0.05


class StopFlag:
    def __init__(self) -> None:
        self._requested = False

    def set(self) -> None:
        self._requested = True

    def is_set(self) -> bool:
        return self._requested

    def wait(self, seconds: float) -> bool:
        """Sleep until set or `seconds` passed; whether it is set."""
        deadline = time.monotonic() + seconds
        while not self._requested:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(WAIT_SLICE_SECONDS, left))
        return self._requested
