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
    """A process we started took long to stop after SIGTERM (`slow_after` seconds), or outlasted its time and was
    killed. Shown in the run's warnings summary (pyproject.toml: not an error) with what each of its threads was
    doing, so that a stop that drags once in a loaded CI run can be read afterwards."""


def threads_of(pid: int) -> str:
    """What a Python process's threads, and its children's, are doing (`py-spy dump`), and the kernel's view of
    each of its threads (state, wait channel, kernel stack where readable): a process whose main thread has
    ended while another thread waits in the kernel (a long fsync, say) has no Python stack left to dump."""
    py_spy = Path(sys.executable).with_name("py-spy")
    try:
        dumped = subprocess.run(
            [str(py_spy), "dump", "--subprocesses", "--pid", str(pid)], capture_output=True, text=True, timeout=20
        )
        python = (dumped.stdout or dumped.stderr)[-8000:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        python = f"(no Python stack: {exc})"
    return f"{python}\nits threads in the kernel:\n{_kernel_threads(pid)}"


def _kernel_threads(pid: int) -> str:
    lines = []
    try:
        tasks = sorted(Path(f"/proc/{pid}/task").iterdir(), key=lambda task: int(task.name))
    except OSError as exc:
        return f"  (gone: {exc})"
    for task in tasks[:64]:
        try:
            comm = (task / "comm").read_text().strip()
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
            wchan = (task / "wchan").read_text().strip() or "-"
        except OSError:
            continue
        lines.append(f"  thread {task.name} ({comm}): state {state}, waiting in {wchan}")
        try:
            lines += [f"    {frame}" for frame in (task / "stack").read_text().splitlines()[:8]]
        except OSError:
            pass
    return "\n".join(lines)


def stop_processes(
    procs: list["subprocess.Popen[bytes]"], timeout: float = 15, report_slow: bool = True, slow_after: float = 5
) -> None:
    """Stop processes we started (and their children), all at once: each group gets SIGTERM, then SIGKILL if it
    is still there `timeout` seconds later. A process still there `slow_after` seconds after its SIGTERM is
    reported with a `SlowStop` warning saying where its threads were then, whether it stopped later or was
    killed (unless `report_slow` is off: for processes known to be slow to stop)."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    sent, read_at = time.monotonic(), min(slow_after, timeout)
    for proc in procs:
        where = _wait_or_read_threads(proc, sent + read_at) if report_slow else None
        try:
            proc.wait(max(0.0, sent + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if where is not None:
                message = (
                    f"{proc.args!r} (pid {proc.pid}) was still running {timeout:g} s after its SIGTERM and was killed"
                )
                warnings.warn(
                    SlowStop(f"{message}; its threads {read_at:g} s after the SIGTERM:\n{where}"), stacklevel=2
                )
            continue
        if where is not None:
            took = time.monotonic() - sent
            message = f"{proc.args!r} (pid {proc.pid}) took {took:.1f} s to stop after its SIGTERM"
            warnings.warn(SlowStop(f"{message}; its threads {read_at:g} s after the SIGTERM:\n{where}"), stacklevel=2)


def _wait_or_read_threads(proc: "subprocess.Popen[bytes]", until: float) -> str | None:
    """None when the process ended by `until`; else what its threads are doing now."""
    try:
        proc.wait(max(0.0, until - time.monotonic()))
        return None
    except subprocess.TimeoutExpired:
        return threads_of(proc.pid)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of one process (all its threads, not its children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def resident_mb(pid: int) -> float:
    """The process's resident memory now (VmRSS), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024
