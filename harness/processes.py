"""Processes a test or a benchmark started: stopped by process group id (never by name), and the CPU time one
used."""

import os
import signal
import subprocess
import time
from pathlib import Path


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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of one process (all its threads, not its children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
