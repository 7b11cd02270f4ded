"""Stopping what a test or a benchmark started: by process group id, never by name."""

import os
import signal
import subprocess
import time


def stop_processes(procs: list["subprocess.Popen[bytes]"], timeout: float = 15) -> None:
    """Stop processes we started (and their children), all at once: each group gets SIGTERM, then SIGKILL if it
    is still there `timeout` seconds later."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
