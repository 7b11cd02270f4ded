"""The worker: claim a job, train it in a child process, watch it, record how it ended.

Signals: the first SIGTERM or SIGINT asks the running job to stop and go back to the queue,
then the worker exits; a second SIGINT kills the child at once (the job is requeued too).
"""

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from types import FrameType

from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import make_engine, make_session_factory
from app.db.jobs import claim_next, get_job, touch_heartbeat
from app.db.migrate import upgrade
from app.db.tables import JobStatus
from app.settings import Settings
from models.registry import preload_trainers
from workers.child import train_job_in_child
from workers.outcomes import fail_job, requeue_job

log = logging.getLogger(__name__)
GRACEFUL_STOP_SECONDS = 30.0
# fork: the child starts in milliseconds with torch already imported; it opens its own
# database connections and never touches the parent's.
CONTEXT = multiprocessing.get_context("fork")


def describe_exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (the kernel's out-of-memory killer sends SIGKILL: lower batch_size?)" if name == "SIGKILL" else ""
        return f"the training process was killed by signal {name}{hint}"
    return f"the training process exited with code {exitcode} without recording a result"


class Worker:
    def __init__(self, settings: Settings, name: str | None = None) -> None:
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.engine = make_engine(settings.resolved_database_url)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.stopping = threading.Event()
        self.killing = False
        self.child: multiprocessing.process.BaseProcess | None = None

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping.is_set() and signum == signal.SIGINT:
            self.killing = True
            if self.child is not None and self.child.pid:
                os.kill(self.child.pid, signal.SIGKILL)
            return
        log.info(
            "worker %s: %s received, stopping after the current job hands back", self.name, signal.Signals(signum).name
        )
        self.stopping.set()
        if self.child is not None and self.child.pid:
            os.kill(self.child.pid, signal.SIGTERM)

    def run(self) -> None:
        """Claim and train jobs until a stop signal; never returns while a child is alive."""
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        upgrade(self.engine)
        preload_trainers()  # each forked child then starts with torch already imported
        log.info("worker %s waiting for jobs", self.name)
        try:
            while not self.stopping.is_set():
                with self.sessions() as session:
                    job_id = claim_next(session, self.name)
                if job_id is None:
                    self.stopping.wait(self.settings.worker_poll_seconds)
                    continue
                self.run_one(job_id)
        finally:
            self.engine.dispose()

    def run_one(self, job_id: int) -> None:
        log.info("worker %s: job %s started", self.name, job_id)
        s = self.settings
        self.child = CONTEXT.Process(
            target=train_job_in_child,
            args=(job_id, s.resolved_database_url, str(s.data_dir), s.download_datasets, s.flush_seconds, os.getpid()),
            name=f"job-{job_id}",
        )
        self.child.start()
        try:
            self._watch(job_id, self.child)
        finally:
            exitcode = self.child.exitcode
            self.child = None
            self._settle(job_id, exitcode)

    def _watch(self, job_id: int, child: multiprocessing.process.BaseProcess) -> None:
        last_beat = time.monotonic()
        stop_sent_at: float | None = None
        while child.is_alive():
            child.join(timeout=0.5)
            now = time.monotonic()
            if now - last_beat >= self.settings.heartbeat_seconds:
                with self.sessions() as session:
                    touch_heartbeat(session, job_id)
                last_beat = now
            if self.stopping.is_set():
                stop_sent_at = stop_sent_at or now
                if now - stop_sent_at > GRACEFUL_STOP_SECONDS and child.pid:
                    os.kill(child.pid, signal.SIGKILL)

    def _settle(self, job_id: int, exitcode: int | None) -> None:
        """Whatever the child did not record: a stop we asked for is a requeue, anything else a failure."""
        with self.sessions() as session:
            status = get_job(session, job_id).status
        if status != JobStatus.running:
            log.info("worker %s: job %s %s", self.name, job_id, status)
            return
        if self.stopping.is_set():
            requeue_job(self.sessions, job_id)
        else:
            fail_job(self.sessions, job_id, describe_exit(exitcode))
