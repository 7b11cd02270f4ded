"""The local executor: attempts trained in a child process forked per attempt, one at a time.

The worker's loop runs the executor pass (`workers/executor.py`: register and hand back stale jobs,
reconcile the running child, claim the next job) over `ForkedChild`, its placement, every half second
while a child trains and every WORKER_POLL_SECONDS while it waits.

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
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from models.kinds import KINDS, TORCH_KINDS, preload_torch
from models.training.precision import CPU_BF16_ENV, cpu_model, measure_in_subprocess
from store.attempts import Attempt, PlacedJob, fail_attempt, hand_back
from store.cpu_verdicts import kept_verdict
from store.engine import session_factory_for
from store.executors import remove_executor
from store.health import database_problem, describe
from store.jobs import any_queued
from store.migrate import upgrade
from store.unit_of_work import transact, unit_of_work
from supervision.stop_flag import StopFlag
from workers.child import train_attempt_in_child
from workers.executor import Capacity, ExecutorPass, Placed
from workers.output import JobOutput
from workers.retry import TRANSIENT, backoff_seconds, retrying
from workers.settings import WorkerSettings

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


class ForkedChild:
    """The local placement: one attempt at a time, in a child forked from the worker (its output in a file
    under `log_dir`, copied into the job's logs)."""

    role = "worker"

    def __init__(
        self, name: str, settings: WorkerSettings, sessions: sessionmaker[Session], stopping: StopFlag
    ) -> None:
        self.name, self.settings, self.sessions, self.stopping = name, settings, sessions, stopping
        self.gpus, self.cpus = float(visible_gpus()), settings.worker_cpus or float(os.cpu_count() or 1)
        self.log_dir = Path(tempfile.mkdtemp(prefix="cifar-jobs-logs-"))  # the children's output, until copied
        self.child: multiprocessing.process.BaseProcess | None = None
        self.attempt: Attempt | None = None
        self.out: JobOutput | None = None
        self.stop_sent_at: float | None = None  # when the worker's stop reached the child
        self.stop_repeated = False
        self.torch_preloaded = False

    def preload_torch(self) -> None:
        """Import torch and the torch training code in the worker, once: each child forked after it starts with them
        (a worker that trains only NumPy MLPs never pays its 2-3 s of CPU)."""
        if not self.torch_preloaded:
            preload_torch()
            self.torch_preloaded = True

    def refresh(self) -> None:
        pass

    def adopt(self, running: Sequence[PlacedJob]) -> list[Attempt]:
        return []  # a child of an earlier life of this worker died with it: the stale-heartbeat hand-back's

    def capacity(self, running: Sequence[PlacedJob]) -> Capacity:
        return Capacity(self.gpus, self.cpus, self.gpus, self.cpus)

    def ready(self) -> bool:
        return self.child is None

    def state(self, attempt: Attempt) -> Placed:
        if attempt != self.attempt or self.child is None:
            return Placed.absent
        return Placed.running if self.child.is_alive() else Placed.ended

    def place(self, job: PlacedJob, attempt: Attempt) -> None:
        log.info("worker %s: job %s started (attempt %s)", self.name, attempt.job_id, attempt.number)
        if KINDS[job.model].uses_torch:  # usually done while the job waited (Worker); else now, before the fork
            self.preload_torch()
        self.out = JobOutput(self.log_dir / f"job-{attempt.job_id}-attempt-{attempt.number}.log")
        args = (attempt, self.settings, os.getpid(), self.out.path)
        self.attempt = attempt
        self.child = CONTEXT.Process(target=train_attempt_in_child, args=args, name=f"job-{attempt.job_id}")
        self.child.start()

    def where(self, attempt: Attempt) -> dict[str, Any] | None:
        return None  # the child records its host and process itself

    def output(self, attempt: Attempt, job: PlacedJob) -> tuple[str, bool] | None:
        return self.out.read_if_changed() if self.out is not None and attempt == self.attempt else None

    def output_not_saved(self, attempt: Attempt) -> None:
        if self.out is not None:
            self.out.forget()

    def halt(self, attempt: Attempt) -> None:
        if attempt == self.attempt:
            _signal_child(self.child, signal.SIGKILL)

    def settle(self, attempt: Attempt, job: PlacedJob) -> None:
        """A stop we asked for (or a cancel that had to be enforced) is a hand-back, which cancels a job whose
        cancel is pending; anything else a failure."""
        exitcode = self.child.exitcode if self.child is not None else None
        if self.stopping.is_set() or job.cancel_requested:
            transact(self.sessions, lambda session: hand_back(session, attempt))
        else:
            transact(self.sessions, lambda session: fail_attempt(session, attempt, describe_exit(exitcode)))

    def forget(self, attempt: Attempt) -> None:
        if self.out is not None:
            self.out.remove()
        self.child, self.attempt, self.out, self.stop_sent_at, self.stop_repeated = None, None, None, None, False

    def kill_when_overdue(self, now: float) -> None:
        """The worker is stopping: past `graceful_stop_seconds` after its SIGTERM, a child that did not stop is
        killed."""
        if self.child is None:
            return
        if not self.stop_repeated:  # once more, for a child forked (or not yet started) when the signal came
            _signal_child(self.child, signal.SIGTERM)
            self.stop_repeated = True
        self.stop_sent_at = self.stop_sent_at or now
        if now - self.stop_sent_at > self.settings.graceful_stop_seconds:
            _signal_child(self.child, signal.SIGKILL)  # it may have ended meanwhile: then nothing

    def close(self) -> None:
        shutil.rmtree(self.log_dir, ignore_errors=True)


class Worker:
    def __init__(self, settings: WorkerSettings, name: str | None = None) -> None:
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.engine, self.sessions = session_factory_for(settings)
        self.stopping = StopFlag()
        self.placement = ForkedChild(self.name, settings, self.sessions, self.stopping)
        self.executor = ExecutorPass(self.placement, self.sessions, settings, output_every=settings.heartbeat_seconds)

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        """Runs in the main thread between bytecodes, possibly inside itself: it takes no lock."""
        child = self.placement.child
        if self.stopping.is_set():
            if signum == signal.SIGINT:  # the second Ctrl-C: stop now
                _signal_child(child, signal.SIGKILL)
            return
        log.info("worker %s: %s received; the running job checkpoints and goes back to the queue",
                 self.name, signal.Signals(signum).name)  # fmt: skip
        self.stopping.set()
        if child is not None:
            self.placement.stop_sent_at = time.monotonic()
            _signal_child(child, signal.SIGTERM)

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
        log.info("worker %s waiting for jobs (%g GPUs, %g CPUs)", self.name, self.placement.gpus, self.placement.cpus)
        try:
            failures = 0  # passes in a row that met a database outage
            while True:
                stopping = self.stopping.is_set()
                try:
                    if not stopping and self.placement.ready():
                        self._preload_torch_when_needed()
                    self.executor.run_once(claim=not stopping)
                except TRANSIENT as exc:  # the database is locked or away: wait for it, do not die
                    failures += 1
                    log.warning("worker %s: %s (%s); retrying in %.1f s", self.name,
                                describe(database_problem(exc) or "unavailable"), type(exc).__name__,
                                backoff_seconds(failures))  # fmt: skip
                    self._wait(backoff_seconds(failures))
                    continue
                failures = 0
                if stopping:
                    if not self.executor.placed:
                        break
                    self.placement.kill_when_overdue(time.monotonic())
                self._wait(self.settings.worker_poll_seconds)
        finally:
            try:
                with unit_of_work(self.sessions) as session:
                    remove_executor(session, self.name)
            except TRANSIENT:
                pass  # its row goes stale on its own
            self.placement.close()
            self.engine.dispose()

    def _wait(self, idle_seconds: float) -> None:
        """Half a second while a child trains (its end is seen at once), else `idle_seconds` or a stop."""
        child = self.placement.child
        if child is not None:
            child.join(timeout=0.5)
        else:
            self.stopping.wait(idle_seconds)

    def _preload_torch_when_needed(self) -> None:
        """Preload torch while a job that trains with it waits, before it is claimed (placing one preloads too, for a
        job that came between this look and the claim)."""
        if self.placement.torch_preloaded:
            return
        with self.sessions() as session:
            if not any_queued(session, TORCH_KINDS):
                return
        self.placement.preload_torch()
