"""A job's progress bar (rich: in a terminal, and in Jupyter as a live cell output), fed by its events. Where the
output is neither (a pipe, a file, a CI log) it prints a line for each change of status and each test evaluation
instead, as they come."""

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

COLUMNS = (TextColumn("job {task.fields[job]} {task.fields[status]}"), BarColumn(), MofNCompleteColumn(),
           TextColumn("{task.fields[accuracy]}"), TimeRemainingColumn())  # fmt: skip


class ProgressBar:
    """What the events say, shown on a rich progress bar (or as lines); use it as a context manager."""

    def __init__(self, job_id: int, console: Console | None = None) -> None:
        self.console = console or Console()
        self.job_id = job_id
        self.lines = not (self.console.is_terminal or self.console.is_jupyter)
        self.progress = Progress(*COLUMNS, console=self.console, transient=False, disable=self.lines)
        self.task: TaskID = self.progress.add_task("", total=None, job=job_id, status="", accuracy="")
        self.status, self.max_steps = "", 0

    def __enter__(self) -> "ProgressBar":
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def show(self, name: str, data: dict[str, Any]) -> None:
        if name in ("status", "end"):
            self.progress.update(self.task, status=data["status"])
            if self.lines and data["status"] != self.status:
                self.console.print(f"job {self.job_id} {data['status']}", markup=False, highlight=False)
            self.status = data["status"]
        elif name == "progress":
            self.max_steps = data["max_steps"]
            self.progress.update(self.task, total=data["max_steps"], completed=data["step"])
        elif name == "points":
            tests = [p for p in data["points"] if p["split"] == "test"]
            if tests:
                self.progress.update(self.task, accuracy=f"test accuracy {tests[-1]['accuracy']:.4f}")
            for point in tests if self.lines else ():
                step = f"{point['step']}/{self.max_steps or '?'}"
                line = f"job {self.job_id} step {step} test accuracy {point['accuracy']:.4f} loss {point['loss']:.4g}"
                self.console.print(line, markup=False, highlight=False)
