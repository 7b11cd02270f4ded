"""The process that trains one attempt at a job. The worker forks it per job and watches it.

It opens its own database connections, resumes from the job's checkpoint when there is one,
runs `models.run.run_job`, and records the outcome itself; when it dies without doing so,
the worker records the failure.
"""

import ctypes
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from models.artifacts import ModelArtifact, unpack_model
from models.errors import JobError
from models.kinds import KINDS, parse_spec
from models.reproducibility import environment_record
from models.run import run_job
from models.training.results import DataSource, StartFrom
from models.training.threads import train_with_cpus
from store.artifacts import model_file
from store.attempts import (
    Attempt,
    cancel_attempt,
    fail_attempt,
    hand_back,
    preempt_attempt,
    record_reproducibility,
    start_attempt,
    stop_early_attempt,
    succeed_attempt,
)
from store.engine import session_factory_for
from store.errors import StoreError
from store.jobs import job_if_any
from store.unit_of_work import transact
from workers.memory_guard import guard_training_memory
from workers.reporter import DatabaseReporter
from workers.retry import retrying
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel for SIGTERM when the worker dies: the job checkpoints and goes back to the
    queue, and no orphan keeps training."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass
    if os.getppid() != parent_pid:  # the worker died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def internal_error(exc: Exception) -> str:
    """The job's error for an unexpected exception: its type and message, but never a database
    error's text (it holds SQL and parameters); the full traceback is in the worker's log."""
    if isinstance(exc, SQLAlchemyError):
        return f"internal error: {type(exc).__name__} from the database (details in the worker's log)"
    return f"internal error: {type(exc).__name__}: {str(exc)[:500]}"


def read_init_model(sessions: sessionmaker[Session], job_id: int | None) -> ModelArtifact:
    """The model of the job a spec starts from; JobError when it is gone or has none."""
    assert job_id is not None
    with sessions() as session:
        try:
            return unpack_model(model_file(session, job_id))
        except StoreError as exc:
            raise JobError(f"init_from_job: {exc}") from exc


def _summary(metrics: dict[str, float]) -> str:
    shown = ("test_accuracy", "test_loss", "train_loss", "steps_per_second")
    return ", ".join(f"{name} {metrics[name]:.4g}" for name in shown if name in metrics)


def capture_output(path: Path) -> None:
    """This process's stdout and stderr (print, logging, tracebacks, a crash's last words) into `path`,
    which the worker copies into the job's logs; its log records go on to the worker's log too."""
    sys.stdout.flush()
    sys.stderr.flush()
    worker_log = os.fdopen(os.dup(2), "w", buffering=1)  # the worker's stderr, before it is replaced
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    to_worker = logging.StreamHandler(worker_log)
    root = logging.getLogger()
    if root.handlers:
        to_worker.setFormatter(root.handlers[0].formatter)
    root.addHandler(to_worker)


def train_attempt_in_child(attempt: Attempt, settings: WorkerSettings, parent_pid: int, log_path: Path) -> None:
    """The local worker's child: its output into `log_path`, dies with its worker."""
    capture_output(log_path)
    os.nice(settings.training_nice)  # training yields the CPU to the API and the database on a shared machine
    run_attempt(attempt, settings, lambda: die_with_parent(parent_pid))


def run_attempt(attempt: Attempt, settings: WorkerSettings, after_signals: Callable[[], None] | None = None) -> None:
    """Train one attempt at a job in this process and record how it ended: the body of the local
    worker's child and of the Ray executor's entrypoint (`python -m workers.run_attempt`).

    SIGTERM or SIGINT: the loop checkpoints at its next check and the job goes back to the queue."""
    engine, sessions = session_factory_for(settings)
    reporter = DatabaseReporter(sessions, attempt, settings.flush_seconds, settings.checkpoint_min_seconds)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        reporter.interrupted.set()  # the loop checkpoints and stops at its next check; the job is handed back

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if after_signals is not None:
        after_signals()
    try:
        _train(attempt, settings, sessions, reporter)
    finally:
        engine.dispose()


def _record_environment(
    sessions: sessionmaker[Session],
    attempt: Attempt,
    dataset: str,
    settings: WorkerSettings,
    parent: int | None,
    uses_torch: bool,
) -> None:
    """The run's reproducibility record (with its parent's, for a fine-tuned job); a failure here is logged, never
    the job's."""
    try:
        record = environment_record(dataset, settings.data_dir, uses_torch)
        if parent is not None:
            with sessions() as session:
                parent_job = job_if_any(session, parent)
                record["parent"] = {"job_id": parent, "record": parent_job.reproducibility if parent_job else None}
        retrying(
            lambda: transact(sessions, lambda session: record_reproducibility(session, attempt, record)),
            f"job {attempt.job_id}: its record",
        )
    except Exception:
        log.warning("job %s: no reproducibility record:\n%s", attempt.job_id, traceback.format_exc())


def _train(
    attempt: Attempt, settings: WorkerSettings, sessions: sessionmaker[Session], reporter: DatabaseReporter
) -> None:
    try:
        start = retrying(
            lambda: transact(sessions, lambda session: start_attempt(session, attempt)),
            f"job {attempt.job_id}: starting",
        )
        if start.checkpoint is not None:
            log.info("job %s resumes from its checkpoint at step %s", attempt.job_id, start.checkpoint_step)
        source = DataSource(settings.data_dir, settings.download_datasets)
        spec = parse_spec(start.spec)
        reporter.max_steps = spec.max_steps
        reporter.watch_alerts(spec.alerts, start.alerts_fired)
        reporter.sample_system(start.cpus, settings.system_metrics_seconds)
        threads = train_with_cpus(start.cpus, KINDS[spec.model].uses_torch)
        log.info("job %s, attempt %s: %s on %s, %s steps of %s images, %s threads", attempt.job_id, attempt.number,
                 spec.model, spec.dataset, f"{spec.max_steps:,}", spec.batch_size, threads)  # fmt: skip
        guard_training_memory(settings.training_memory_limit_mb, spec.device)
        begin = StartFrom(start.checkpoint)
        if spec.init_from_job is not None and start.checkpoint is None:
            begin = StartFrom(
                None,
                retrying(lambda: read_init_model(sessions, spec.init_from_job), "reading init_from_job's model"),
                spec.init_from_job,
            )
        result = run_job(spec, reporter, source, begin)
        reporter.flush(final=True)
        _record_environment(sessions, attempt, spec.dataset, settings, spec.init_from_job, KINDS[spec.model].uses_torch)
        outcome = f"job {attempt.job_id}: recording its outcome"
        if reporter.lost:
            log.warning("job %s was taken over by another attempt; this one stops", attempt.job_id)
        elif not result.stopped:
            log.info("job %s: %s steps done, %s", attempt.job_id, result.steps_done, _summary(result.metrics))
            metrics = result.job_metrics()
            retrying(
                lambda: transact(
                    sessions,
                    lambda session: succeed_attempt(session, attempt, metrics, result.steps_done, result.artifact),
                ),
                outcome,
            )
        elif reporter.cancel_requested:
            log.info("job %s cancelled at step %s", attempt.job_id, result.steps_done)
            retrying(
                lambda: transact(
                    sessions, lambda session: cancel_attempt(session, attempt, result.job_metrics(), result.steps_done)
                ),
                outcome,
            )
        elif reporter.early_stop_requested or reporter.alert_stop:
            by = "an alert rule" if reporter.alert_stop else "its sweep or an alert rule"
            log.info("job %s stopped early by %s at step %s", attempt.job_id, by, result.steps_done)
            metrics, steps, model = result.job_metrics(), result.steps_done, result.artifact
            retrying(
                lambda: transact(sessions, lambda session: stop_early_attempt(session, attempt, metrics, steps, model)),
                outcome,
            )
        elif reporter.preempt_requested and not reporter.interrupted.is_set():
            log.info("job %s gave its place at step %s with a checkpoint: back to the queue", attempt.job_id,
                     result.steps_done)  # fmt: skip
            steps = result.steps_done
            retrying(lambda: transact(sessions, lambda session: preempt_attempt(session, attempt, steps)), outcome)
        else:
            log.info(
                "job %s stopped at step %s with a checkpoint: back to the queue", attempt.job_id, result.steps_done
            )
            retrying(lambda: transact(sessions, lambda session: hand_back(session, attempt)), outcome)
    except JobError as exc:
        reporter.flush(final=True)
        reason = str(exc)
        retrying(
            lambda: transact(sessions, lambda session: fail_attempt(session, attempt, reason)),
            f"job {attempt.job_id}: recording its failure",
        )
    except Exception as exc:  # anything else is a bug or an environment problem: keep the traceback in the log
        log.error("job %s crashed:\n%s", attempt.job_id, traceback.format_exc())
        message = internal_error(exc)
        retrying(
            lambda: transact(sessions, lambda session: fail_attempt(session, attempt, message)),
            f"job {attempt.job_id}: recording its failure",
        )
