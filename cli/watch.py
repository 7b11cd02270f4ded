"""Following a job's event stream with a progress bar, through keep-alive pings and dropped connections.

The stream (`GET /jobs/{id}/events`) sends `status`, `progress`, `points` and, last, `end`; between
them the server sends keep-alive comments, which arrive as events without data and are skipped.
Each event's id is the last step whose points were sent: when the connection drops, the watcher
reconnects with `Last-Event-ID` and the service goes on from there, so no point comes twice.
"""

import time
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, connect_sse
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from cli.http import answer, console, errors

RECONNECT_DELAYS = (0.5, 1, 2, 4, 8, 8, 8, 8, 8, 8)  # then give up: about a minute without the service
DROPPED = httpx.TransportError  # a refused or dropped connection, a cut stream


def summary(job: dict[str, Any]) -> str:
    metrics = job.get("final_metrics") or {}
    parts = [f"job {job['id']} {job['status']}", f"step {job['progress']['step']}/{job['progress']['max_steps']}"]
    for key in ("test_accuracy", "best_test_accuracy", "train_loss", "steps_per_second"):
        if isinstance(metrics.get(key), int | float):
            parts.append(f"{key} {metrics[key]:.4g}")
    if job.get("cancel_requested") and job["status"] == "running":
        parts.append("cancel requested: it stops within seconds")
    if job.get("waiting_reason"):
        parts.append(f"waiting: {job['waiting_reason']}")
    if job.get("preemptions"):
        times = "once" if job["preemptions"] == 1 else f"{job['preemptions']} times"
        parts.append(f"preempted {times} (GET /jobs/{job['id']}/attempts)")
    if job.get("error"):
        parts.append(f"error: {job['error']}")
    for alert in job.get("alerts_fired") or []:
        parts.append(f"alert {alert['rule']} ({alert['when']}, {alert['action']}): {alert['message']}")
    if record := job.get("reproducibility"):
        parts.append(f"record: {record_line(record)}")
    if job.get("reproduces"):
        parts.append(f"reproduces job {job['reproduces']} (GET /jobs/{job['id']}/reproduction)")
    return ", ".join(parts)


def record_line(record: dict[str, Any]) -> str:
    """The reproducibility record in one line: version and commit, packages, where, precision, data."""
    service, packages, runtime = record["service"], record["packages"], record.get("runtime") or {}
    commit = (service.get("git_commit") or "")[:10]
    where = record["gpu"]["name"] if record.get("gpu") else record["cpu"]
    return (f"cifar-jobs {service.get('version')}{f' {commit}' if commit else ''}"
            f"{' (dirty)' if service.get('git_dirty') else ''}; torch {packages['torch']}, numpy {packages['numpy']}; "
            f"{where}; {runtime.get('device')} {runtime.get('precision')}; data {record['data']['dataset']} "
            f"{record['data']['sha256'][:12]}")  # fmt: skip


class _Display:
    """What the events say, shown on a rich progress bar."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress, self.task = progress, task
        self.ended = False

    def show(self, event: ServerSentEvent) -> None:
        if not event.data:  # a keep-alive comment: nothing happened
            return
        data = event.json()
        if event.event == "status":
            self.progress.update(self.task, status=data["status"])
        elif event.event == "progress":
            self.progress.update(self.task, total=data["max_steps"], completed=data["step"])
        elif event.event == "points":
            tests = [p for p in data["points"] if p["split"] == "test"]
            if tests:
                self.progress.update(self.task, accuracy=f"test accuracy {tests[-1]['accuracy']:.4f}")
        elif event.event == "end":
            self.progress.update(self.task, status=data["status"])
            self.ended = True


def _follow(http: httpx.Client, job_id: int, display: _Display) -> None:
    last_event_id: str | None = None
    failures = 0
    while not display.ended:
        headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
        try:
            with connect_sse(http, "GET", f"/jobs/{job_id}/events", headers=headers, timeout=None) as source:
                if source.response.status_code == 503 and failures < len(RECONNECT_DELAYS):  # busy: wait, again
                    wait = float(source.response.headers.get("Retry-After", RECONNECT_DELAYS[failures]))
                    errors.print(f"the service is busy; trying again in {wait:g} s")
                    time.sleep(wait)
                    failures += 1
                    continue
                if not source.response.is_success:
                    source.response.read()
                    answer(source.response)
                failures = 0
                for event in source.iter_sse():
                    display.show(event)
                    if event.id:
                        last_event_id = event.id
                    if display.ended:
                        return
        except DROPPED as exc:
            if failures == len(RECONNECT_DELAYS):
                raise
            errors.print(f"connection lost ({type(exc).__name__}); reconnecting from step {last_event_id or 0}")
            time.sleep(RECONNECT_DELAYS[failures])
            failures += 1
            continue
        # the server closed the stream without an `end` (it restarted, say): follow it again
        time.sleep(RECONNECT_DELAYS[0])


def watch(http: httpx.Client, job_id: int) -> int:
    """Follow the job until it ends; print its final numbers. The exit code: 0 when it succeeded."""
    columns = (TextColumn("job {task.fields[job]} {task.fields[status]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[accuracy]}"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("", total=None, job=job_id, status="", accuracy="")
        _follow(http, job_id, _Display(progress, task))
    job = answer(http.get(f"/jobs/{job_id}"))
    console.print(summary(job))
    return 0 if job["status"] == "succeeded" else 1
