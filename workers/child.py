"""The process that trains one job. The worker forks it per job and watches it.

It opens its own database connections, runs `models.runner.run_job`, and records the outcome
itself; when it dies without doing so, the worker records the failure.
"""

import ctypes
import logging
import os
import signal
import traceback
from pathlib import Path
from types import FrameType

from app.db.engine import make_engine, make_session_factory
from app.db.jobs import get_job
from models.errors import JobError
from models.runner import RunEnv, run_job
from workers.outcomes import cancel_running_job, fail_job, requeue_job, succeed_job
from workers.reporter import DatabaseReporter

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to send SIGTERM when the worker dies, so no orphan keeps training."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass
    if os.getppid() != parent_pid:  # the worker died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def train_job_in_child(
    job_id: int, database_url: str, data_dir: str, download: bool, flush_seconds: float, parent_pid: int
) -> None:
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    reporter = DatabaseReporter(sessions, job_id, flush_seconds)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        reporter.interrupted.set()  # the loop stops at its next check; the job goes back to the queue

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    die_with_parent(parent_pid)
    try:
        with sessions() as session:
            spec = get_job(session, job_id).spec
        result = run_job(spec, reporter, RunEnv(Path(data_dir), download))
        reporter.flush()
        if not result.stopped:
            succeed_job(sessions, job_id, result.metrics, result.steps_done, result.artifact)
        elif reporter.cancel_requested:
            cancel_running_job(sessions, job_id, result.metrics, result.steps_done)
        else:
            requeue_job(sessions, job_id)  # no checkpoint yet: it starts over
    except JobError as exc:
        reporter.flush()
        fail_job(sessions, job_id, str(exc))
    except Exception as exc:  # anything else is a bug or an environment problem: keep the traceback in the log
        log.error("job %s crashed:\n%s", job_id, traceback.format_exc())
        fail_job(sessions, job_id, f"internal error: {type(exc).__name__}: {exc}")
    finally:
        engine.dispose()
