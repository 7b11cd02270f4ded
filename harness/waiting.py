"""Waiting for an event with a deadline (a row, a status, a log line, a process's end), never for a fixed time:
one loop, `wait_until`, under every wait of the tests and the benchmarks."""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None], timeout: float, what: str | Callable[[], str], every: float = 0.1
) -> T:
    """Until `condition()` returns something true (returned), looking every `every` seconds; TimeoutError naming
    `what` (a callable: what it says when the time is up) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what() if callable(what) else what}: not after {timeout}s")
        time.sleep(every)
    return value


def wait_for_job(
    client: httpx.Client, job_id: int, reached: Callable[[dict[str, Any]], bool], timeout: float, what: str
) -> dict[str, Any]:
    """The job as `GET /jobs/{id}` answers once `reached(job)`."""
    last: dict[str, Any] = {}

    def read() -> dict[str, Any] | None:
        last.update(client.get(f"/jobs/{job_id}").json())
        return dict(last) if reached(last) else None

    return wait_until(read, timeout, lambda: f"job {job_id} {what} (it is {last.get('status')})")


def wait_for_status(client: httpx.Client, job_id: int, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
    return wait_for_job(client, job_id, lambda job: job["status"] in statuses, timeout, f"reaching {sorted(statuses)}")


def wait_for_step(client: httpx.Client, job_id: int, step: int, timeout: float = 60) -> dict[str, Any]:
    return wait_for_job(
        client,
        job_id,
        lambda job: job["status"] == "running" and job["progress"]["step"] >= step,
        timeout,
        f"running at step {step} or later",
    )


def wait_for_log(path: Path, text: str, timeout: float = 30) -> None:
    """Until the log file at `path` holds `text`."""
    wait_until(
        lambda: path.exists() and text in path.read_text(errors="replace"), timeout, f"{text!r} in {path}", every=0.05
    )


def _ended(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie runs nothing
    except FileNotFoundError:
        return True


def wait_for_exit(pid: int, timeout: float) -> None:
    """Until process pid is gone (or a zombie)."""
    wait_until(lambda: _ended(pid), timeout, f"process {pid} ending", every=0.05)
