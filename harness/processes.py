"""Processes a test or a benchmark started: stopped by process group id (never by name), and the CPU time one
used."""

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path


class SlowStop(UserWarning):
    """A process we started outlasted its time after SIGTERM and was killed. Shown in the run's warnings summary
    (pyproject.toml: not an error) with what each of its threads was doing, so that a stop that hangs once in a
    loaded CI run can be read afterwards."""


def threads_of(pid: int) -> str:
    """What a Python process's threads are doing (`py-spy dump`; a few lines when it cannot say)."""
    py_spy = Path(sys.executable).with_name("py-spy")
    try:
        dumped = subprocess.run([str(py_spy), "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(no stack: {exc})"
    return (dumped.stdout or dumped.stderr)[-4000:]


def stop_processes(procs: list["subprocess.Popen[bytes]"], timeout: float = 15, report_slow: bool = True) -> None:
    """Stop processes we started (and their children), all at once: each group gets SIGTERM, then SIGKILL if it
    is still there `timeout` seconds later (a `SlowStop` warning says where it was, unless `report_slow` is off:
    for processes known to be slow to stop)."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            where = threads_of(proc.pid) if report_slow else ""
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if report_slow:
                message = (
                    f"{proc.args!r} (pid {proc.pid}) was still running {timeout:g} s after its SIGTERM and was killed"
                )
                warnings.warn(SlowStop(f"{message}; its threads then:\n{where}"), stacklevel=2)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of one process (all its threads, not its children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
