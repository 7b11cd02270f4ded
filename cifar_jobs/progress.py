"""A job's progress bar (rich: in a terminal, and in Jupyter as a live cell output), fed by its events."""

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

COLUMNS = (TextColumn("job {task.fields[job]} {task.fields[status]}"), BarColumn(), MofNCompleteColumn(),
           TextColumn("{task.fields[accuracy]}"), TimeRemainingColumn())  # fmt: skip


class ProgressBar:
    """What the events say, shown on a rich progress bar; use it as a context manager."""

    def __init__(self, job_id: int, console: Console | None = None) -> None:
        self.progress = Progress(*COLUMNS, console=console, transient=False)
        self.task: TaskID = self.progress.add_task("", total=None, job=job_id, status="", accuracy="")

    def __enter__(self) -> "ProgressBar":
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def show(self, name: str, data: dict[str, Any]) -> None:
        if name in ("status", "end"):
            self.progress.update(self.task, status=data["status"])
        elif name == "progress":
            self.progress.update(self.task, total=data["max_steps"], completed=data["step"])
        elif name == "points":
            tests = [p for p in data["points"] if p["split"] == "test"]
            if tests:
                self.progress.update(self.task, accuracy=f"test accuracy {tests[-1]['accuracy']:.4f}")
