"""The executor seam: the pass every executor runs, whatever runs its attempts.

An executor is a loop of `ExecutorPass.run_once` over a `Placement`, which is where its attempts run: a
process forked per attempt (`workers/worker.py`), a Ray job (`workers/ray_dispatcher.py`); a Kubernetes pod
or a Slurm job is one more `Placement`. Every attempt runs `workers/child.py::run_attempt`, which records its
points, checkpoints and outcome itself; each pass does what the attempt's process cannot:

1. register the executor (its row in `executors`: what one job can get there) and hand back jobs whose
   executor stopped heartbeating, both every `heartbeat_seconds`;
2. reconcile each attempt it placed: while it runs, heartbeat it, record where it runs, copy its output
   now and then, fail it once past its job's `timeout_s`, and stop it when a cancel was not acted on within
   `stop_grace_seconds`; once it ended, copy its last output and settle what it did not record (the
   placement says how: hand it back, requeue it, fail it);
3. claim the next queued job that fits what is free now (`store/attempts.py::claim_next`) and place it; when
   the job a claim would take next cannot start here now, and one of its running jobs may give its place to it
   (`workers/preemption.py`), ask that one to checkpoint and go back to the queue.
"""

import importlib.metadata
import logging
import os
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from models.kinds import KINDS
from models.kinds.common import SPEC_VERSION
from store.attempts import (
    Attempt,
    PlacedJob,
    claim_next,
    fail_attempt,
    jobs_by_id,
    jobs_run_by,
    next_in_line,
    record_placement,
    request_preemption,
    requeue_stale_jobs,
    touch_heartbeat,
)
from store.errors import JobNotFound
from store.executors import ExecutorAbout, register_executor
from store.logs import save_log
from store.tables import AttemptOutcome, JobStatus, utcnow
from store.unit_of_work import transact, unit_of_work
from workers.preemption import PreemptionRules, choose_victim
from workers.retry import TRANSIENT
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)
PREEMPT_LOOK_SECONDS = 1.0  # how often a busy executor looks for a queued job to make room for
INSTALLED_KINDS = {name: kind.version for name, kind in KINDS.items()}  # what this executor can run


@dataclass(frozen=True)
class Capacity:
    """What an executor can give: one more job now, and one job at all (registered: `GET /jobs/{id}` tells a
    job that fits no executor why it waits)."""

    gpus: float
    cpus: float
    largest_gpus: float
    largest_cpus: float


def _version() -> str:
    try:
        return importlib.metadata.version("cifar-jobs")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


class Placed(Enum):
    """Where an attempt's process stands, as its placement sees it."""

    running = "running"
    ended = "ended"
    absent = "absent"  # never placed (claimed, then its executor stopped before placing it)


class Placement(Protocol):
    """Where an executor's attempts run. A new executor is one of these and a loop calling `run_once`."""

    name: str  # the executor's name, stored on the jobs it runs (`jobs.worker`)
    role: str  # what it is, as `GET /executors` shows it: `worker`, `ray dispatcher`

    def refresh(self) -> None:
        """Once at the start of each pass: read what the placements' state comes from."""

    def adopt(self, running: Sequence[PlacedJob]) -> Iterable[Attempt]:
        """At the first pass: the attempts placed before this executor started (`running`: the jobs the store
        says it runs), to reconcile as its own."""

    def capacity(self, running: Sequence[PlacedJob]) -> Capacity:
        """What is free, given the jobs it runs."""

    def ready(self) -> bool:
        """Whether it would place one more attempt now (a forked child already running, a Ray job still
        pending: not yet)."""

    def state(self, attempt: Attempt) -> Placed: ...

    def place(self, job: PlacedJob, attempt: Attempt) -> None:
        """Start the attempt's process (`workers/child.py::run_attempt`)."""

    def where(self, attempt: Attempt) -> dict[str, Any] | None:
        """Where it runs, for `jobs.placement`; None: nothing to record."""

    def output(self, attempt: Attempt, job: PlacedJob) -> tuple[str, bool] | None:
        """(its output so far, the newest part of it; whether older output was left out), or None when
        there is nothing new."""

    def output_not_saved(self, attempt: Attempt) -> None:
        """The last `output` could not be stored: give it again next time."""

    def halt(self, attempt: Attempt) -> None:
        """Stop its process now (its job failed for its timeout, or a cancel was not acted on)."""

    def settle(self, attempt: Attempt, job: PlacedJob) -> None:
        """Its process ended without recording how: hand the job back, requeue it or fail it."""

    def forget(self, attempt: Attempt) -> None:
        """It ended and is settled: drop what was kept for it."""


@dataclass
class Watched:
    """What a pass remembers of one placed attempt between passes."""

    beat_at: float = float("-inf")
    output_at: float = float("-inf")
    cancel_seen_at: float | None = None
    halted: bool = False
    where: dict[str, Any] | None = None  # as last recorded


class ExecutorPass:
    def __init__(
        self, placement: Placement, sessions: sessionmaker[Session], settings: WorkerSettings, output_every: float
    ) -> None:
        self.placement, self.sessions, self.settings = placement, sessions, settings
        self.output_every = output_every
        self.placed: dict[Attempt, Watched] = {}
        self._adopted = False
        self._jobs: dict[int, PlacedJob] = {}  # the placed attempts' jobs as last read
        self._jobs_read_at = float("-inf")
        self._registered: tuple[float, float, float] = (float("-inf"), -1.0, -1.0)  # when, largest GPUs, CPUs
        self._preempt_looked_at = float("-inf")
        self._about = ExecutorAbout(placement.role, socket.gethostname(), os.getpid(), _version(), utcnow())

    @property
    def name(self) -> str:
        return self.placement.name

    def run_once(self, claim: bool = True) -> Attempt | None:
        """One pass; the attempt it placed, if any. Database outages in one attempt's reconciling are logged and
        retried at the next pass; elsewhere they are the caller's to wait out."""
        placement = self.placement
        placement.refresh()
        now = time.monotonic()
        if not self._adopted:
            with self.sessions() as session:
                ours = jobs_run_by(session, self.name)
            for attempt in placement.adopt(ours):
                self.placed.setdefault(attempt, Watched())
            self._adopted = True
        states = {attempt: placement.state(attempt) for attempt in self.placed}
        jobs = self._read_jobs(states, now)
        running = [job for attempt in self.placed if (job := jobs.get(attempt.job_id)) and self._runs(job, attempt)]
        capacity = placement.capacity(running)
        self._register(capacity, now)
        for attempt, watched in list(self.placed.items()):
            try:
                self._reconcile(attempt, states[attempt], watched, jobs.get(attempt.job_id), now)
            except TRANSIENT as exc:
                log.warning("%s: job %s not reconciled (%s); again next pass", self.name, attempt.job_id,
                            type(exc).__name__)  # fmt: skip
        if not claim:
            return None
        if not placement.ready():  # what is free once its running jobs end: each one's place, and what they leave
            left_gpus = max(0.0, capacity.largest_gpus - sum(job.gpus for job in running))
            left_cpus = max(0.0, capacity.largest_cpus - sum(job.cpus for job in running))
            self._preempt_for_next(running, Capacity(left_gpus, left_cpus, capacity.largest_gpus,
                                                     capacity.largest_cpus), ready=False)  # fmt: skip
            return None
        claimed = claim_next(self.sessions, self.name, capacity.gpus, capacity.cpus, SPEC_VERSION,
                             self.settings.quota_running_jobs, INSTALLED_KINDS)  # fmt: skip
        if claimed is None:
            self._preempt_for_next(running, capacity)
            return None
        with self.sessions() as session:
            job = jobs_by_id(session, [claimed.job_id]).get(claimed.job_id)
        if job is None:
            return None
        self.placed[claimed] = Watched(beat_at=now, output_at=now)
        self._jobs[job.id] = job
        placement.place(job, claimed)
        return claimed

    def _preempt_for_next(self, running: list[PlacedJob], capacity: Capacity, ready: bool = True) -> None:
        """The job a claim would take next on this executor, when it cannot start now (the placement is not
        `ready`, or it does not fit what is free): ask one of the running jobs (PREEMPT_* settings:
        `workers/preemption.py`) to give it its place. Looked at once a second at most."""
        now = time.monotonic()
        if now - self._preempt_looked_at < PREEMPT_LOOK_SECONDS:
            return
        self._preempt_looked_at = now
        rules = PreemptionRules(self.settings.preemption, self.settings.preempt_priority_gap,
                                self.settings.preempt_min_run_seconds, self.settings.preempt_max_times)  # fmt: skip
        if not rules.enabled or not running:
            return
        waiting = next_in_line(self.sessions, capacity.largest_gpus, capacity.largest_cpus, SPEC_VERSION,
                               self.settings.quota_running_jobs, INSTALLED_KINDS)  # fmt: skip
        if waiting is None or (ready and waiting.gpus <= capacity.gpus and waiting.cpus <= capacity.cpus):
            return  # nothing waits, or it fits what is free: the next claim takes it
        victim = choose_victim(running, waiting, capacity.gpus, capacity.cpus, rules, utcnow())
        if victim is None:
            return
        with unit_of_work(self.sessions) as session:
            request_preemption(session, Attempt(victim.id, victim.attempts), waiting, self.name)

    def _read_jobs(self, states: dict[Attempt, Placed], now: float) -> dict[int, PlacedJob]:
        """The placed attempts' jobs, read every heartbeat (for cancels and timeouts), and at once when an
        attempt's process ended or is not placed (to settle it against its job as it is now)."""
        ids = [attempt.job_id for attempt in states]
        due = now - self._jobs_read_at >= self.settings.heartbeat_seconds
        if not due and all(state is Placed.running for state in states.values()):
            return self._jobs
        if ids:
            with self.sessions() as session:
                self._jobs = jobs_by_id(session, ids)
        else:
            self._jobs = {}
        self._jobs_read_at = now
        return self._jobs

    def _register(self, capacity: Capacity, now: float) -> None:
        """Every heartbeat, or sooner when what one job can get there changed."""
        last_at, gpus, cpus = self._registered
        largest = (capacity.largest_gpus, capacity.largest_cpus)
        if now - last_at < self.settings.heartbeat_seconds and largest == (gpus, cpus):
            return
        with unit_of_work(self.sessions) as session:
            register_executor(session, self.name, *largest, SPEC_VERSION, INSTALLED_KINDS, self._about)
        self._registered = (now, *largest)
        self._hand_back_stale_jobs()

    def _hand_back_stale_jobs(self) -> None:
        """Running jobs whose executor stopped heartbeating (checked as often as this one registers)."""
        stale_before = utcnow() - timedelta(seconds=self.settings.stale_after_seconds)
        with unit_of_work(self.sessions) as session:
            requeued, failed = requeue_stale_jobs(session, stale_before)
        for job_id in requeued:
            log.warning("job %s lost its executor (no heartbeat): back in the queue", job_id)
        for job_id in failed:
            log.warning("job %s lost its executor on its last allowed attempt: failed", job_id)

    def _runs(self, job: PlacedJob, attempt: Attempt) -> bool:
        """The job is running this attempt, under this executor."""
        return job.status == JobStatus.running.value and job.attempts == attempt.number and job.worker == self.name

    def _reconcile(self, attempt: Attempt, state: Placed, watched: Watched, job: PlacedJob | None, now: float) -> None:
        ours = job is not None and self._runs(job, attempt)
        if state is Placed.absent:
            if ours:
                assert job is not None
                self.placement.place(job, attempt)  # claimed, then its executor stopped before it placed it
            else:
                del self.placed[attempt]
            return
        if state is Placed.running:
            if ours:
                assert job is not None
                self._watch(attempt, watched, job, now)
            return  # otherwise it recorded its end (or lost its job) and its process is on its way out
        if job is not None:  # ended: its last output, then what it did not record
            self._copy_output(attempt, job)
            if ours:
                self.placement.settle(attempt, job)
            else:
                log.info("%s: job %s %s", self.name, job.id, job.status)
        self.placement.forget(attempt)
        del self.placed[attempt]

    def _watch(self, attempt: Attempt, watched: Watched, job: PlacedJob, now: float) -> None:
        where = self.placement.where(attempt)
        if where is not None and where != watched.where:  # as soon as it is known (a short job may end first)
            with unit_of_work(self.sessions) as session:
                record_placement(session, attempt, where)
            watched.where = where
        if now - watched.beat_at >= self.settings.heartbeat_seconds:
            with unit_of_work(self.sessions) as session:
                touch_heartbeat(session, attempt)
            watched.beat_at = now
        if now - watched.output_at >= self.output_every:
            self._copy_output(attempt, job)
            watched.output_at = now
        if watched.halted:
            return
        timeout = job.timeout_s
        if (
            timeout is not None
            and job.started_at is not None
            and utcnow() - job.started_at > timedelta(seconds=timeout)
        ):
            why = f"timed out: the attempt ran longer than timeout_s={timeout}"
            transact(self.sessions, lambda session: fail_attempt(session, attempt, why, AttemptOutcome.timed_out))
            self._halt(attempt, watched)
            return
        if job.cancel_requested:
            watched.cancel_seen_at = watched.cancel_seen_at or now
            if now - watched.cancel_seen_at > self.settings.stop_grace_seconds:
                log.info("job %s: cancelled %.0f s ago and still running; %s stops it", job.id,
                         now - watched.cancel_seen_at, self.name)  # fmt: skip
                self._halt(attempt, watched)

    def _halt(self, attempt: Attempt, watched: Watched) -> None:
        self.placement.halt(attempt)
        watched.halted = True

    def _copy_output(self, attempt: Attempt, job: PlacedJob) -> None:
        """The attempt's output so far into the job's logs (a database outage skips one copy)."""
        got = self.placement.output(attempt, job)
        if got is None:
            return
        text, truncated = got
        try:
            with unit_of_work(self.sessions) as session:
                save_log(session, attempt.job_id, attempt.number, text, truncated)
        except JobNotFound:
            log.info("job %s was deleted after it ended: its output goes with it", attempt.job_id)
        except TRANSIENT as exc:
            self.placement.output_not_saved(attempt)
            log.warning("job %s: logs not copied (%s)", attempt.job_id, type(exc).__name__)
