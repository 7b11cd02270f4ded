"""Jobs' curves held in this API process and read incrementally: the points of settled steps are
read once, later reads fetch only what came after them.

A step is settled when every point it will have is stored: the trainer writes a step's train point
and, at an evaluation step, its test point, possibly in two flushes. So the newest step counts only
once its test point is in (or it is no evaluation step), and every step of a finished job counts.
That is what lets an event stream use "the last step sent" as its cursor and never miss a point.
"""

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from app.curves.downsample import Curve
from models.training.curve import Cadence
from store.jobs import find_job
from store.outbox import status_events
from store.points import read_points
from store.system_points import SYSTEM_FIELDS, latest_system_point
from store.tables import Job, JobStatus
from store.transitions import FINISHED


@dataclass(frozen=True)
class JobView:
    """A job's state at one read, with its curve up to `settled_step` (and the newest unsettled points)."""

    id: int
    status: str
    step: int
    max_steps: int
    steps_per_second: float | None
    images_per_second: float | None
    attempts: int
    error: str | None
    final_metrics: dict[str, Any] | None
    curve: Curve
    settled_step: int  # every point with step <= this is in `curve` and will not change
    alerts_fired: tuple[dict[str, Any], ...] = ()  # the spec's alert rules that fired, oldest first
    latest_system: dict[str, Any] | None = None  # the newest system sample (CPU, memory, data wait, GPU)
    # asked with `status_after`: the status changes after it, from the outbox, read after the job (so `status`
    # is never newer than the last of them), and the id to read on from
    status_changes: tuple[dict[str, Any], ...] = ()
    status_cursor: int | None = None

    @property
    def finished(self) -> bool:
        return JobStatus(self.status) in FINISHED

    def settled_after(self, cursor: int) -> np.ndarray:
        """Indices of the curve's settled points with step > cursor."""
        start = int(np.searchsorted(self.curve.step, cursor, side="right"))
        end = int(np.searchsorted(self.curve.step, self.settled_step, side="right"))
        return np.arange(start, max(start, end))

    def progress(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "max_steps": self.max_steps,
            "fraction": self.step / self.max_steps if self.max_steps else 0.0,
            "steps_per_second": self.steps_per_second,
            "images_per_second": self.images_per_second,
        }


def _settled_step(job: Job, curve: Curve) -> int:
    if not len(curve):
        return -1
    last = int(curve.step[-1])
    if JobStatus(job.status) in FINISHED:
        return last
    has_test_at_last = bool(curve.is_test[-1])  # stored order: train before test at a step
    waits_for_test = not has_test_at_last and Cadence.of(job.spec).is_eval_step(last)  # the trainer's schedule
    return last - 1 if waits_for_test else last


@dataclass
class _Cached:
    created_at: datetime  # which job: SQLite gives a deleted job's id to the next one
    settled: Curve
    settled_step: int


def _concat(a: Curve, b: Curve) -> Curve:
    return Curve(
        np.concatenate([a.step, b.step]),
        np.concatenate([a.is_test, b.is_test]),
        np.concatenate([a.loss, b.loss]),
        np.concatenate([a.accuracy, b.accuracy]),
    )


class JobCurves:
    """The settled part of recently read jobs' curves (least recently used dropped first). Thread-safe."""

    def __init__(self, sessions: sessionmaker[Session], capacity: int = 32) -> None:
        self.sessions, self.capacity = sessions, capacity
        self._cached: OrderedDict[int, _Cached] = OrderedDict()
        self._lock = threading.Lock()
        self._first_reads = [threading.Lock() for _ in range(64)]  # by job id: one first read of a job at a time

    def view(self, job_id: int, with_system: bool = False, status_after: int | None | Literal["now"] = None) -> JobView:
        """The job now, with its whole curve (and its newest system sample, and with `status_after` its status
        changes after that outbox id, for an event stream; "now": none yet, only the cursor). Raises
        JobNotFound. Blocking: call off the event loop."""
        with self._lock:
            cached = self._cached.get(job_id)
        if cached is None:  # a whole curve to read: requests that come together for it read it once, those after
            with self._first_reads[job_id % len(self._first_reads)]:  # the first only what is new
                return self._view(job_id, with_system, status_after)
        return self._view(job_id, with_system, status_after)

    def _view(self, job_id: int, with_system: bool, status_after: int | None | Literal["now"]) -> JobView:
        with self._lock:
            cached = self._cached.get(job_id)
        settled_step = cached.settled_step if cached else -1
        with self.sessions() as session:
            job = find_job(session, job_id)
            cursor, changes = (  # read after the job: its status is never newer than the last of them
                status_events(session, job_id, None if status_after == "now" else status_after)
                if status_after is not None
                else (None, [])
            )
            if cached is not None and cached.created_at != job.created_at:  # another job with this id
                cached, settled_step = None, -1
            fresh = Curve.from_rows(list(read_points(session, job_id, since=settled_step)))
            sample = latest_system_point(session, job_id) if with_system else None
        curve = _concat(cached.settled, fresh) if cached else fresh
        now_settled = _settled_step(job, curve)
        with self._lock:
            count = int(np.searchsorted(curve.step, now_settled, side="right"))
            self._cached[job_id] = _Cached(job.created_at, curve.select(np.arange(count)), now_settled)
            self._cached.move_to_end(job_id)
            while len(self._cached) > self.capacity:
                self._cached.popitem(last=False)
        return JobView(
            job.id,
            job.status,
            job.step,
            job.max_steps,
            job.steps_per_second,
            job.images_per_second,
            job.attempts,
            job.error,
            job.final_metrics,
            curve,
            now_settled,
            tuple(job.alerts_fired or ()),
            None if sample is None else dict(zip(SYSTEM_FIELDS, sample, strict=True)),
            tuple(changes),
            cursor,
        )
