"""The worker: claim a job, train it in a child process, watch it, record how it ended.

The loop reads like its description: stop requested? -> hand back stale jobs -> claim the next
job -> run it in a child -> heartbeat while it runs -> settle what the child did not record.

Signals: the first SIGTERM or SIGINT asks the running job to checkpoint and go back to the
queue, then the worker exits; a second SIGINT kills the child at once (the job is requeued and
resumes from its last checkpoint).
"""

import glob
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from types import FrameType

from sqlalchemy.orm import Session, sessionmaker

from models.kinds import TORCH_KINDS, preload_torch
from models.kinds.common import SPEC_VERSION
from models.training.precision import CPU_BF16_ENV, cpu_model, measure_in_subprocess
from store.attempts import (
    Attempt,
    AttemptState,
    claim_next,
    fail_attempt,
    hand_back,
    requeue_stale_jobs,
    touch_heartbeat,
)
from store.cpu_verdicts import kept_verdict
from store.engine import engine_for, make_session_factory
from store.errors import JobNotFound
from store.executors import register_executor, remove_executor
from store.health import database_problem, describe
from store.jobs import any_queued, find_job
from store.logs import save_log
from store.migrate import upgrade
from store.tables import Job, JobStatus, utcnow
from workers.child import train_attempt_in_child
from workers.output import JobOutput
from workers.retry import TRANSIENT, retrying
from workers.settings import WorkerSettings
from workers.stop_flag import StopFlag

log = logging.getLogger(__name__)
# fork: the child starts in milliseconds with torch already imported; it opens its own
# database connections and never touches the parent's. The parent must never run a torch
# operation itself: a child forked after OpenMP's threads exist can deadlock.
CONTEXT = multiprocessing.get_context("fork")


def visible_gpus() -> int:
    """The GPUs this worker may use: CUDA_VISIBLE_DEVICES when set (`--gpus` sets it), else the
    NVIDIA devices present; read without initialising CUDA (children are forked)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")  # noqa: TID251  (CUDA's own variable)
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    return len(glob.glob("/dev/nvidia[0-9]*"))


def _signal_child(child: multiprocessing.process.BaseProcess | None, signum: int) -> None:
    """Signal the training process if it is still there. `is_alive()` reaps it when it has ended, and a
    reaped pid must not be signalled (ProcessLookupError, or another process that got the pid)."""
    if child is None or child.pid is None or not child.is_alive():
        return
    try:
        os.kill(child.pid, signum)
    except ProcessLookupError:
        pass


def describe_exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (the kernel's out-of-memory killer sends SIGKILL: lower batch_size?)" if name == "SIGKILL" else ""
        return f"the training process was killed by signal {name}{hint}"
    return f"the training process exited with code {exitcode} without recording a result"


class Worker:
    def __init__(self, settings: WorkerSettings, name: str | None = None) -> None:
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.engine = engine_for(settings)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.stopping = StopFlag()
        self.killing = False
        self.torch_preloaded = False
        self.child: multiprocessing.process.BaseProcess | None = None
        self._last_reap = 0.0
        self.log_dir = Path(tempfile.mkdtemp(prefix="cifar-jobs-logs-"))  # the children's output, until copied

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        """Runs in the main thread between bytecodes, possibly inside itself: it takes no lock."""
        if self.stopping.is_set():
            if signum == signal.SIGINT:  # the second Ctrl-C: stop now
                self.killing = True
                _signal_child(self.child, signal.SIGKILL)
            return
        log.info("worker %s: %s received; the running job checkpoints and goes back to the queue",
                 self.name, signal.Signals(signum).name)  # fmt: skip
        self.stopping.set()
        _signal_child(self.child, signal.SIGTERM)

    def _cpu_verdict(self) -> bool:
        cpu = cpu_model()
        verdict = kept_verdict(self.sessions, cpu, measure_in_subprocess, f"worker {self.name}")
        speedup = f"{verdict.speedup:.2f}x" if verdict.speedup is not None else "not measured"
        log.info("bfloat16 autocast on %s: %s (%s, %s by %s)", cpu, "faster, used" if verdict.bf16 else "not used",
                 speedup, "kept" if verdict.kept else "measured now", verdict.measured_by)  # fmt: skip
        return verdict.bf16

    def run(self) -> None:
        """Claim and train jobs until a stop signal; never returns while a child is alive."""
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        upgrade(self.engine)
        if self.settings.cpu_bf16 is None:  # the verdict kept for this CPU model, measured by the first worker
            self.settings.cpu_bf16 = retrying(self._cpu_verdict, "reading this CPU's precision verdict")
        os.environ[CPU_BF16_ENV] = "1" if self.settings.cpu_bf16 else "0"  # noqa: TID251  (its children read it)
        self.gpus, self.cpus = visible_gpus(), float(os.cpu_count() or 1)
        retrying(self._register, "registering the worker")
        log.info("worker %s waiting for jobs (%g GPUs, %g CPUs)", self.name, self.gpus, self.cpus)
        try:
            outage_wait = 0.5
            while not self.stopping.is_set():
                try:
                    self.reap_stale_jobs()
                    with self.sessions() as session:
                        if not self.torch_preloaded and any_queued(session, TORCH_KINDS):
                            # once, when a job that trains with torch waits: each forked child then starts with
                            # torch imported; a worker that trains only NumPy MLPs never pays its 2-3 s of CPU
                            preload_torch()
                            self.torch_preloaded = True
                        attempt = claim_next(
                            session, self.name, self.gpus, self.cpus, SPEC_VERSION, self.settings.quota_running_jobs
                        )
                except TRANSIENT as exc:  # the database is locked or away: wait for it, do not die
                    log.warning("worker %s: %s (%s); retrying in %.1f s", self.name,
                                describe(database_problem(exc) or "unavailable"), type(exc).__name__,
                                outage_wait)  # fmt: skip
                    self.stopping.wait(outage_wait)
                    outage_wait = min(10.0, outage_wait * 2)
                    continue
                outage_wait = 0.5
                if attempt is None:
                    self.stopping.wait(self.settings.worker_poll_seconds)
                    continue
                self.run_one(attempt)
        finally:
            try:
                with self.sessions() as session:
                    remove_executor(session, self.name)
            except TRANSIENT:
                pass  # its row goes stale on its own
            shutil.rmtree(self.log_dir, ignore_errors=True)
            self.engine.dispose()

    def reap_stale_jobs(self) -> None:
        """Hand back jobs whose worker stopped sending heartbeats (at most every few seconds)."""
        now = time.monotonic()
        if now - self._last_reap < self.settings.heartbeat_seconds:
            return
        self._last_reap = now
        self._register()
        stale_before = utcnow() - timedelta(seconds=self.settings.stale_after_seconds)
        with self.sessions() as session:
            requeued, failed = requeue_stale_jobs(session, stale_before)
        for job_id in requeued:
            log.warning("job %s lost its worker (no heartbeat): back in the queue", job_id)
        for job_id in failed:
            log.warning("job %s lost its worker on its last allowed attempt: failed", job_id)

    def _register(self) -> None:
        with self.sessions() as session:
            register_executor(session, self.name, self.gpus, self.cpus, SPEC_VERSION)

    def run_one(self, attempt: Attempt) -> None:
        log.info("worker %s: job %s started (attempt %s)", self.name, attempt.job_id, attempt.number)
        output = JobOutput(self.log_dir / f"job-{attempt.job_id}-attempt-{attempt.number}.log")
        args = (attempt, self.settings, os.getpid(), output.path)
        self.child = CONTEXT.Process(target=train_attempt_in_child, args=args, name=f"job-{attempt.job_id}")
        self.child.start()
        timed_out = False
        try:
            timed_out = self._watch(attempt, output)
        finally:
            exitcode = self.child.exitcode
            self.child = None
            self._copy_output(attempt, output)
            output.remove()
            self._settle(attempt, exitcode, timed_out)

    def _copy_output(self, attempt: Attempt, output: JobOutput) -> None:
        """The child's output so far into the job's logs (best effort: a database outage skips a copy)."""
        changed = output.read_if_changed()
        if changed is None:
            return
        text, truncated = changed
        try:
            with self.sessions() as session:
                if not save_log(session, attempt.job_id, attempt.number, text, truncated):
                    log.info("job %s was deleted after it ended: its output goes with it", attempt.job_id)
        except TRANSIENT as exc:
            output.forget()  # try again next time
            log.warning("job %s: logs not copied (%s)", attempt.job_id, type(exc).__name__)

    def _watch(self, attempt: Attempt, output: JobOutput) -> bool:
        """Heartbeat until the child ends; returns True when it was killed for its timeout. A cancel the child
        has not acted on within `stop_grace_seconds` of the heartbeat that saw it (a child stopped, or stuck in
        a call that never returns) kills it: the job is then cancelled (`_settle`), as the Ray executor does."""
        child = self.child
        assert child is not None
        timeout_s = retrying(lambda: self._timeout_of(attempt), f"job {attempt.job_id}: reading its timeout")
        started = last_beat = time.monotonic()
        stop_sent_at: float | None = None
        cancel_seen_at: float | None = None
        while child.is_alive():
            child.join(timeout=0.5)
            now = time.monotonic()
            if now - last_beat >= self.settings.heartbeat_seconds:
                try:
                    with self.sessions() as session:
                        state = touch_heartbeat(session, attempt)
                    if state is AttemptState.cancel_requested and cancel_seen_at is None:
                        cancel_seen_at = now
                    self._register()  # still alive while busy: queued jobs that fit it wait for it, no reason
                except TRANSIENT as exc:  # the child buffers its points meanwhile; try again next beat
                    log.warning("job %s: heartbeat not written (%s)", attempt.job_id, type(exc).__name__)
                self._copy_output(attempt, output)
                last_beat = now
            if timeout_s is not None and now - started > timeout_s and child.is_alive():
                _signal_child(child, signal.SIGKILL)
                child.join()
                return True
            if cancel_seen_at is not None and now - cancel_seen_at > self.settings.stop_grace_seconds:
                log.info("job %s: cancelled %.0f s ago and still training; its process is killed", attempt.job_id,
                         now - cancel_seen_at)  # fmt: skip
                _signal_child(child, signal.SIGKILL)
                cancel_seen_at = float("inf")  # once
            if self.stopping.is_set():
                stop_sent_at = stop_sent_at or now
                if now - stop_sent_at > self.settings.graceful_stop_seconds:
                    _signal_child(child, signal.SIGKILL)  # it may have ended meanwhile: then nothing
        return False

    def _timeout_of(self, attempt: Attempt) -> int | None:
        with self.sessions() as session:
            try:
                return find_job(session, attempt.job_id).timeout_s
            except JobNotFound:  # it ended and was deleted already
                return None

    def _read_job(self, attempt: Attempt) -> Job:
        with self.sessions() as session:
            return find_job(session, attempt.job_id)

    def _settle(self, attempt: Attempt, exitcode: int | None, timed_out: bool) -> None:
        """Whatever the child did not record: a stop we asked for is a hand-back (a job whose cancel is pending
        is cancelled by it), anything else a failure. A job that is gone (it ended, and was deleted at once) is as
        good as cancelled: nothing to do."""
        try:
            job = retrying(lambda: self._read_job(attempt), f"job {attempt.job_id}: reading how it ended")
        except JobNotFound:
            log.info("worker %s: job %s was deleted meanwhile; nothing to record", self.name, attempt.job_id)
            return
        if job.status != JobStatus.running or job.attempts != attempt.number:  # the child recorded how it ended
            log.info("worker %s: job %s %s", self.name, attempt.job_id, job.status)
            return
        what = f"job {attempt.job_id}: recording its outcome"
        if timed_out:
            message = f"timed out: the attempt ran longer than timeout_s={job.timeout_s}"
            retrying(lambda: fail_attempt(self.sessions, attempt, message), what)
        elif self.stopping.is_set() or job.cancel_requested:
            retrying(lambda: hand_back(self.sessions, attempt), what)
        else:
            retrying(lambda: fail_attempt(self.sessions, attempt, describe_exit(exitcode)), what)
