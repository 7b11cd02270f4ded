"""The database-backed Reporter: buffers curve points and progress, writes them in batches."""

import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from app.db.jobs import record_progress
from app.db.points import PointRow, add_points
from models.reporting import Split


class DatabaseReporter:
    """Writes at most once per `flush_seconds` (and on close), one transaction per write.

    The cancel flag is read back with every write, so a cancel reaches the training loop within
    about `flush_seconds`; `interrupted` is set by the process's signal handler.
    """

    def __init__(self, sessions: sessionmaker[Session], job_id: int, flush_seconds: float) -> None:
        self.sessions = sessions
        self.job_id = job_id
        self.flush_seconds = flush_seconds
        self.interrupted = threading.Event()
        self.cancel_requested = False
        self._points: list[PointRow] = []
        self._progress: tuple[int, float, float] | None = None
        self._last_flush = time.monotonic()

    def point(self, step: int, split: Split, loss: float, accuracy: float) -> None:
        self._points.append((step, split, loss, accuracy))
        self._maybe_flush()

    def progress(self, step: int, steps_per_second: float, images_per_second: float) -> None:
        self._progress = (step, steps_per_second, images_per_second)
        self._maybe_flush()

    def should_stop(self) -> bool:
        self._maybe_flush()
        return self.cancel_requested or self.interrupted.is_set()

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write buffered points and progress, refresh the heartbeat, read the cancel flag; commits."""
        with self.sessions() as session:
            add_points(session, self.job_id, self._points)
            cancel = record_progress(session, self.job_id, *(self._progress or ()))
            session.commit()
        self.cancel_requested = cancel
        self._points.clear()
        self._last_flush = time.monotonic()
