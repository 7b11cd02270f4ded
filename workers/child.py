"""The process that trains one attempt at a job. The worker forks it per job and watches it.

It opens its own database connections, resumes from the job's checkpoint when there is one,
runs `models.runner.run_job`, and records the outcome itself; when it dies without doing so,
the worker records the failure.
"""

import ctypes
import logging
import os
import signal
import traceback
from pathlib import Path
from types import FrameType

from sqlalchemy.orm import Session, sessionmaker

from app.db.artifacts import read_artifact
from app.db.engine import make_engine, make_session_factory
from app.db.jobs import Ownership, get_job
from app.db.points import delete_points_after
from app.db.tables import ArtifactKind
from models.errors import JobError
from models.runner import RunEnv, run_job
from workers.outcomes import cancel_running_job, fail_job, requeue_job, succeed_job
from workers.reporter import DatabaseReporter

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


def prepare_attempt(sessions: sessionmaker[Session], ownership: Ownership) -> tuple[dict, bytes | None]:
    """The spec and the checkpoint to resume from; points logged after that checkpoint are dropped,
    since this attempt logs them again."""
    with sessions() as session:
        spec = get_job(session, ownership.job_id).spec
        found = read_artifact(session, ownership.job_id, ArtifactKind.checkpoint)
        resume_step, resume = (found[0].step, found[1]) if found else (0, None)
        delete_points_after(session, ownership.job_id, resume_step)
        session.commit()
    if resume is not None:
        log.info("job %s resumes from its checkpoint at step %s", ownership.job_id, resume_step)
    return spec, resume


def train_job_in_child(ownership: Ownership, database_url: str, data_dir: str, download: bool,
                       flush_seconds: float, parent_pid: int, nice: int = 0) -> None:  # fmt: skip
    os.nice(nice)  # training yields the CPU to the API and the database on a shared machine
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    reporter = DatabaseReporter(sessions, ownership, flush_seconds)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        reporter.interrupted.set()  # the loop checkpoints and stops at its next check; the job is requeued

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    die_with_parent(parent_pid)
    try:
        spec, resume = prepare_attempt(sessions, ownership)
        result = run_job(spec, reporter, RunEnv(Path(data_dir), download, resume))
        reporter.flush()
        if reporter.lost:
            log.warning("job %s was taken over by another attempt; this one stops", ownership.job_id)
        elif not result.stopped:
            succeed_job(sessions, ownership, result.metrics, result.steps_done, result.artifact)
        elif reporter.cancel_requested:
            cancel_running_job(sessions, ownership, result.metrics, result.steps_done)
        else:
            requeue_job(sessions, ownership)
    except JobError as exc:
        reporter.flush()
        fail_job(sessions, ownership, str(exc))
    except Exception as exc:  # anything else is a bug or an environment problem: keep the traceback in the log
        log.error("job %s crashed:\n%s", ownership.job_id, traceback.format_exc())
        fail_job(sessions, ownership, f"internal error: {type(exc).__name__}: {exc}")
    finally:
        engine.dispose()
