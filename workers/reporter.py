"""The database-backed Reporter: buffers curve points and progress, writes them in batches."""

import logging
import time

from sqlalchemy.orm import Session, sessionmaker

from models.training.alerts import AlertRule, AlertWatch, Firing
from models.training.reporting import Split
from store.alerts import record_firings
from store.artifacts import put_artifact
from store.attempts import Attempt, AttemptState, record_progress
from store.health import database_problem, describe
from store.jobs import job_if_any
from store.points import PointRow, add_points
from store.system_points import SystemRow, add_system_points
from store.tables import ArtifactKind
from store.unit_of_work import unit_of_work
from supervision.stop_flag import StopFlag
from workers.retry import TRANSIENT, retrying
from workers.system_metrics import SystemSampler

log = logging.getLogger(__name__)


class DatabaseReporter:
    """Writes at most once per `flush_seconds` (and on close), one transaction per write.

    Every write first checks that the job is still this attempt's: a job that was
    handed to another worker meanwhile is left alone, and the loop is told to stop. The cancel
    flag is read back with every write, so a cancel reaches the loop within about
    `flush_seconds`; `interrupted` is set by the process's signal handler.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        attempt: Attempt,
        flush_seconds: float,
        checkpoint_min_seconds: float = 0.0,
        max_steps: int | None = None,
    ) -> None:
        self.sessions = sessions
        self.attempt = attempt
        self.job_id = attempt.job_id
        self.flush_seconds = flush_seconds
        self.interrupted = StopFlag()
        self.cancel_requested = False
        self.early_stop_requested = False  # its sweep stopped it: it ends with its model, as stopped_early
        self.preempt_requested = False  # an executor asked for its place: it checkpoints and goes back to the queue
        self.lost = False  # the job is no longer this attempt's
        self._points: list[PointRow] = []
        self._progress: tuple[int, float, float] | None = None
        self._last_flush = time.monotonic()
        self.checkpoint_min_seconds = checkpoint_min_seconds
        self._last_checkpoint = time.monotonic()  # training starts: the first one is due a floor later
        self.max_steps = max_steps
        self._last_train: tuple[float, float] | None = None
        self._last_line = float("-inf")
        self.system: SystemSampler | None = None
        self._system: list[SystemRow] = []
        self._data_wait: float | None = None
        self.alerts = AlertWatch([], set())
        self.alert_stop = False  # an alert rule with `action: stop` fired: it ends as stopped_early
        self._firings: list[dict[str, object]] = []

    def sample_system(self, cpus: float, period_seconds: float) -> None:
        """Sample the process's CPU, memory, data wait (and GPU) every `period_seconds`, written with the points."""
        self.system = SystemSampler(self.attempt.number, cpus, period_seconds)

    def watch_alerts(self, rules: list[AlertRule], fired: frozenset[int]) -> None:
        """Check each point against the spec's alert rules (those that fired on an earlier attempt stay quiet)."""
        self.alerts = AlertWatch(list(rules), set(fired))

    def _fired(self, firings: list[Firing]) -> None:
        for firing in firings:
            log.warning("alert rule %s (%s) fired: %s%s", firing.rule, firing.when, firing.message,
                        "; the job stops" if firing.action == "stop" else "")  # fmt: skip
            self._firings.append(firing.as_record())
            self.alert_stop = self.alert_stop or firing.action == "stop"

    def _of(self, step: int) -> str:
        return f"{step:,}/{self.max_steps:,}" if self.max_steps else f"{step:,}"

    def point(self, step: int, split: Split, loss: float, accuracy: float) -> None:
        self._points.append((step, split, loss, accuracy))
        if split == "test":  # every evaluation gets its line in the job's log
            log.info("step %s: test loss %.4f accuracy %.4f", self._of(step), loss, accuracy)
        else:
            self._last_train = (loss, accuracy)
        self._fired(self.alerts.observe(step, split, loss, accuracy))
        self._maybe_flush()

    def loss_not_finite(self, step: int, loss: float) -> bool:
        """Fire the `loss_not_finite` rules (written at once: the job may fail next); whether one stops the job."""
        self._fired(self.alerts.loss_not_finite(step, loss))
        self.flush(final=True)
        return self.alert_stop

    def progress(
        self, step: int, steps_per_second: float, images_per_second: float, data_wait: float | None = None
    ) -> None:
        self._progress = (step, steps_per_second, images_per_second)
        if data_wait is not None:
            self._data_wait = data_wait
        if self.system is not None and self.system.due():
            self._system.append(self.system.sample(step, self._data_wait))
        now = time.monotonic()
        if self._last_train is not None and now - self._last_line >= self.flush_seconds:  # a line per log interval,
            self._last_line = now  # at most one per flush_seconds
            loss, accuracy = self._last_train
            log.info("step %s: train loss %.4f accuracy %.4f, %.1f steps/s, %.0f images/s",
                     self._of(step), loss, accuracy, steps_per_second, images_per_second)  # fmt: skip
        self._maybe_flush()

    def should_stop(self) -> bool:
        self._maybe_flush()
        return (self.cancel_requested or self.early_stop_requested or self.preempt_requested or self.alert_stop
                or self.lost or self.interrupted.is_set())  # fmt: skip

    def checkpoint(self, step: int, state: bytes) -> None:
        """The points so far and the checkpoint, in one transaction."""
        self.flush(checkpoint=(step, state))
        self._last_checkpoint = time.monotonic()

    def checkpoint_due(self) -> bool:
        """At most one periodic checkpoint per `checkpoint_min_seconds` (CHECKPOINT_MIN_SECONDS): a
        large model's checkpoint is hundreds of MB, and on SQLite its write holds the database's lock."""
        return time.monotonic() - self._last_checkpoint >= self.checkpoint_min_seconds

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self, checkpoint: tuple[int, bytes] | None = None, final: bool = False) -> None:
        """Write buffered points, progress and an optional checkpoint, refresh the heartbeat, read
        the cancel flag; commits. Writes nothing once the job is no longer this attempt's.

        When the database is unavailable, training goes on: the points stay buffered for the next
        flush (a checkpoint is skipped; the next one is written). The `final` flush, before the
        outcome is recorded, retries until the database is back (`workers.retry`)."""
        if self.lost:
            return
        if final:
            retrying(lambda: self._write(checkpoint), f"job {self.job_id}: writing its last points")
            return
        try:
            self._write(checkpoint)
        except TRANSIENT as exc:
            log.warning("job %s: could not write %d points (%s: %s); they stay buffered", self.job_id,
                        len(self._points), describe(database_problem(exc) or "unavailable"),
                        type(exc).__name__)  # fmt: skip
            self._last_flush = time.monotonic()

    def _write(self, checkpoint: tuple[int, bytes] | None) -> None:
        with unit_of_work(self.sessions) as session:
            state = record_progress(session, self.attempt, *(self._progress or ()))
            if state is AttemptState.lost:  # it changed nothing
                self.lost = True
                return
            add_points(session, self.job_id, self._points)
            add_system_points(session, self.job_id, self._system)
            if self._firings:  # with the points they were seen on, in one transaction
                job = job_if_any(session, self.job_id)
                if job is not None:
                    record_firings(session, job, self._firings)
            if checkpoint is not None:
                put_artifact(session, self.job_id, ArtifactKind.checkpoint, checkpoint[1], checkpoint[0])
        self.cancel_requested = state is AttemptState.cancel_requested
        self.early_stop_requested = state is AttemptState.early_stop_requested
        self.preempt_requested = state is AttemptState.preempt_requested
        self._points.clear()
        self._system.clear()
        self._firings.clear()
        self._last_flush = time.monotonic()
