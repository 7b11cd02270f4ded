"""A handle on one job: its state as last read, and what can be done with it."""

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from cifar_jobs.events import follow_events
from cifar_jobs.logs import follow_logs, read_logs
from cifar_jobs.progress import ProgressBar
from cifar_jobs.resource import Resource
from cifar_jobs.tables import Rows

if TYPE_CHECKING:
    from cifar_jobs.torch_models import TrainedModel

FINISHED = frozenset({"succeeded", "failed", "cancelled", "stopped_early"})


CURVE_TYPES = {"step": "int64", "loss": "float64", "accuracy": "float64"}


class Job(Resource):
    """Job `id` as the service last described it (`data`, the answer of `GET /jobs/{id}`)."""

    collection = "/jobs"

    @property
    def model(self) -> str:
        return str(self.data["model"])

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.data["spec"])

    @property
    def final_metrics(self) -> dict[str, Any]:
        return dict(self.data.get("final_metrics") or {})

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def wait(self, progress: bool = True, timeout: float | None = None, console: Console | None = None) -> "Job":
        """Follow the job's events until it ends (a progress bar unless `progress=False`), then refresh. Raises
        TimeoutError when `timeout` seconds pass first. A stream silent for the client's `timeout` (four of the
        service's keep-alive pings by default) is reconnected, as a cut one is."""
        deadline = None if timeout is None else time.monotonic() + timeout
        http, silence = self._connection.http, self._connection.timeout
        if progress:
            with ProgressBar(self.id, console) as bar:
                ended = follow_events(http, self.id, bar.show, deadline, silence=silence)
        else:
            ended = follow_events(http, self.id, lambda _name, _data: None, deadline, silence=silence)
        if not ended:
            raise TimeoutError(f"job {self.id} did not end within {timeout} s")
        return self.refresh()

    def cancel(self) -> "Job":
        """Cancel it if queued; ask it to stop if running (it checkpoints and stops within seconds)."""
        self.data = self._connection.call("POST", f"{self.path}/cancel")
        return self

    def delete(self) -> None:
        """Delete a finished job with its points, logs and model."""
        self._connection.call("DELETE", self.path)

    def patch(self, name: str | None = None, tags: list[str] | None = None, notes: str | None = None) -> "Job":
        """Rename, tag or annotate it (only the arguments given change)."""
        changes = {key: value for key, value in (("name", name), ("tags", tags), ("notes", notes)) if value is not None}
        self.data = self._connection.call("PATCH", self.path, json=changes)
        return self

    def reproduce(self) -> "Job":
        """A new job with the same spec, seed and data, to check the result comes back."""
        return Job(self._connection, self._connection.call("POST", f"{self.path}/reproduce"))

    def attempts(self) -> Rows:
        """Each time it started: when, where, how it ended, and what preempted it."""
        return Rows(self._connection.call("GET", f"{self.path}/attempts")["data"])

    def logs(self, attempt: int | None = None, tail: int | None = None) -> str:
        """What its training process printed (the latest attempt by default; `tail`: the last lines only)."""
        return read_logs(self._connection, self.id, attempt, tail)[0]

    def follow_logs(self, attempt: int | None = None, tail: int | None = None) -> Iterator[str]:
        """Its output as it grows, until it ends."""
        return follow_logs(self._connection, self.id, attempt, tail)

    def curve(self, split: str | None = None, page_points: int | None = None) -> Rows:
        """Every point of its curve (step, split, loss, accuracy) in step order, `page_points` a request (default:
        the service's largest page, which holds a whole curve of the longest job)."""
        points: list[dict[str, Any]] = []
        since: int | None = None
        while True:
            params: dict[str, Any] = {
                **({"limit": page_points} if page_points else {}),
                **({"split": split} if split else {}),
            }
            if since is not None:
                params["since"] = since
            page = self._connection.call("GET", f"{self.path}/metrics", params=params)
            points.extend(page["points"])
            since = page.get("next_since")
            if since is None:
                return Rows(points, CURVE_TYPES)

    def system(self, max_points: int = 2000) -> Rows:
        """How hard its training process worked: CPU, memory, data wait (and GPU), sampled over time."""
        return Rows(self._connection.call("GET", f"{self.path}/system", params={"max_points": max_points})["samples"])

    def download(self, path: str | Path | None = None) -> Path:
        """Save its trained model (a safetensors file; default `job-<id>.safetensors`), checked against the
        service's SHA-256 (a damaged download is deleted and raises)."""
        target = Path(path) if path is not None else Path(f"job-{self.id}.safetensors")
        try:
            with target.open("wb") as file:
                self._checked_model(file.write)
        except OSError:
            target.unlink(missing_ok=True)
            raise
        return target

    def model_bytes(self) -> bytes:
        """Its trained model file, checked against the service's SHA-256."""
        chunks: list[bytes] = []
        self._checked_model(chunks.append)
        return b"".join(chunks)

    def _checked_model(self, write: Callable[[bytes], object]) -> None:
        """Stream the model file into `write`; OSError when its SHA-256 is not the one the service sent."""
        digest = hashlib.sha256()
        with self._connection.stream("GET", f"{self.path}/model") as response:
            expected = response.headers.get("ETag", "").strip('"')
            for chunk in response.iter_bytes():
                digest.update(chunk)
                write(chunk)
        if expected and digest.hexdigest() != expected:
            raise OSError(f"the download of job {self.id}'s model was damaged (SHA-256 differs); try again")

    def torch_model(self) -> "TrainedModel":
        """Its trained network as a torch module in eval mode, with its normalisation in front (imports torch)."""
        from cifar_jobs.torch_models import trained_model

        return trained_model(self.model_bytes())
