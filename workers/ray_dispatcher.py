"""`python -m workers.ray_dispatcher`: the Ray executor. Moves queued jobs, highest priority first, to
a Ray cluster as Ray Jobs, and keeps the database the record of every job.

Each pass (every DISPATCH_SECONDS):
1. reads the cluster's nodes (what one job can get) and this dispatcher's submissions;
2. reconciles every job it runs: heartbeats while its Ray job is pending or running, copies its
   logs, stops it (after the job's own stop flag had its grace period) when cancelled or past its
   `timeout_s`; a Ray job that ended without recording an outcome (node lost, process killed, out
   of memory) is requeued with Ray's message until `max_attempts`, then failed with it;
3. submits what the cluster can start now: the next queued job that fits, only while none of its
   submissions is still pending, so priorities and timeouts keep their meaning.

Submission ids are `cifar-jobs-<job>-<its creation time>-<attempt>`: a dispatcher that restarts finds
its submissions by id, and a retried submit cannot start a second copy. The entrypoint is
`python -m workers.run_attempt`,
which writes points, heartbeats, checkpoints (in the database, so any node can resume) and the outcome
itself. Token authentication is required: a cluster that answers without a token is refused.
"""

import logging
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType
from typing import Any

import httpx
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from models.kinds.common import SPEC_VERSION
from store.attempts import (
    Attempt,
    claim_next,
    fail_attempt,
    hand_back,
    lose_attempt,
    record_placement,
    touch_heartbeat,
)
from store.engine import engine_for, make_session_factory
from store.executors import register_executor, remove_executor
from store.logs import save_log
from store.migrate import upgrade
from store.tables import Job, JobStatus, utcnow
from workers.settings import WorkerSettings

log = logging.getLogger("workers.ray_dispatcher")
PREFIX = "cifar-jobs-"
ACTIVE = {"PENDING", "RUNNING"}
# the settings an entrypoint needs, passed on when set here (DATABASE_URL only without a password)
PASSED_ENV = ("DATABASE_URL", "DATABASE_URL_FILE", "DATA_DIR", "DOWNLOAD_DATASETS", "FLUSH_SECONDS",
              "CHECKPOINT_MIN_SECONDS", "TRAINING_NICE", "TRAINING_MEMORY_LIMIT_MB", "CPU_BF16", "OMP_NUM_THREADS",
              "SQLITE_BUSY_TIMEOUT_MS", "SYSTEM_METRICS_SECONDS")  # fmt: skip


class DispatcherSettings(WorkerSettings):
    ray_address: str = Field("http://127.0.0.1:8265", description="The Ray cluster's dashboard (Jobs API) address.")
    ray_python: str = Field(
        default_factory=lambda: sys.executable,
        description="The Python, on the cluster's nodes, that has this service installed; default: the one "
        "running this dispatcher (the project's .venv, or the image's), which Ray nodes started from the same "
        "environment or image have at the same path.",
    )
    dispatch_seconds: float = Field(1.0, gt=0, description="How often the dispatcher reconciles and submits.")
    logs_every_seconds: float = Field(5.0, gt=0, description="How often a running Ray job's logs are copied.")


def submission_id(job: Job, attempt: Attempt) -> str:
    """`cifar-jobs-<job>-<its creation, ms>-<attempt>`: the same for a retried submit of one attempt,
    never the same for another database's job of the same id (a reset database, another service)."""
    return f"{PREFIX}{attempt.job_id}-{int(job.created_at.timestamp() * 1000)}-{attempt.number}"


def _attempt_of(sid: str) -> Attempt:
    job_id, _created, number = sid.removeprefix(PREFIX).split("-")
    return Attempt(int(job_id), int(number))


def entrypoint_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The settings a Ray job gets in its runtime environment, which anyone holding the cluster's token can
    read: never a password. A DATABASE_URL that holds one must come as DATABASE_URL_FILE, a file that every
    node can read (a mounted secret); SystemExit when there is none."""
    env = {name: environ[name] for name in PASSED_ENV if name in environ}
    url = env.get("DATABASE_URL")
    if url is not None and make_url(url).password is not None:
        if "DATABASE_URL_FILE" not in env:
            raise SystemExit("DATABASE_URL holds a password, which Ray would show in every job's runtime "
                             "environment: put the URL in a file every Ray node can read (a mounted secret) "
                             "and set DATABASE_URL_FILE to it instead")  # fmt: skip
        del env["DATABASE_URL"]  # the nodes read the file
    return env


def require_token_auth(address: str) -> None:
    """Refuse to talk to a cluster without Ray's token authentication, or without the token here."""
    ray = os.environ  # noqa: TID251  (Ray's own variables: its client reads them too)
    if ray.get("RAY_AUTH_MODE") != "token":
        raise SystemExit("EXECUTOR=ray needs RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN or "
                         "RAY_AUTH_TOKEN_PATH): a Ray cluster without authentication runs anyone's code")  # fmt: skip
    if not (ray.get("RAY_AUTH_TOKEN") or ray.get("RAY_AUTH_TOKEN_PATH")):
        raise SystemExit("RAY_AUTH_MODE=token is set, but no token: set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH")
    try:
        anonymous = httpx.get(f"{address.rstrip('/')}/api/jobs/", timeout=10)
    except httpx.HTTPError as exc:
        raise SystemExit(f"the Ray cluster at {address} does not answer: {exc}") from exc
    if anonymous.status_code < 400:
        raise SystemExit(f"the Ray cluster at {address} answers without a token: start it with RAY_AUTH_MODE=token")


@dataclass(frozen=True)
class Capacity:
    """What the cluster can give one job now."""

    gpus: float
    cpus: float
    largest_gpus: float  # on any one node, at all
    largest_cpus: float


class RayDispatcher:
    def __init__(self, settings: DispatcherSettings) -> None:
        from ray.job_submission import JobSubmissionClient

        self.settings = settings
        self.address = settings.ray_address
        self.name = f"ray:{self.address}"
        self.client = JobSubmissionClient(self.address)
        self.engine = engine_for(settings)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.stopping = False
        self._cancel_seen: dict[str, float] = {}
        self._logs_copied: dict[str, float] = {}
        self._final_logs: set[str] = set()  # ended submissions whose whole output is copied

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True  # Ray jobs run on without the dispatcher; the next one finds them by id

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        upgrade(self.engine)
        log.info("dispatching to the Ray cluster at %s", self.address)
        try:
            while not self.stopping:
                try:
                    self.run_once()
                except Exception:  # the cluster or the database away for a moment: try again
                    log.exception("dispatcher pass failed")
                time.sleep(self.settings.dispatch_seconds)
        finally:
            with self.sessions() as session:
                remove_executor(session, self.name)
            self.engine.dispose()

    def run_once(self) -> None:
        submissions: dict[str, Any] = {
            job.submission_id: job
            for job in self.client.list_jobs()
            if job.submission_id is not None and job.submission_id.startswith(PREFIX)
        }
        with self.sessions() as session:
            running = list(session.scalars(select(Job).where(Job.status == JobStatus.running.value,
                                                             Job.worker == self.name)))  # fmt: skip
        capacity = self._capacity(running)
        with self.sessions() as session:
            register_executor(session, self.name, capacity.largest_gpus, capacity.largest_cpus, SPEC_VERSION)
        for job in running:
            self._reconcile(job, submissions)
        for sid, submitted in submissions.items():  # ended after recording their outcome: their last output
            if submitted.status.value not in ACTIVE and sid not in self._final_logs:
                self._copy_logs(sid, _attempt_of(sid))
                self._final_logs.add(sid)
        if any(s.status.value == "PENDING" for s in submissions.values()):
            return  # Ray could not place the last one yet: submit nothing more until it starts
        self._submit_next(capacity)

    def _capacity(self, running: list[Job]) -> Capacity:
        """The cluster's nodes less what this dispatcher's running jobs asked for."""
        from ray.util.state import list_nodes

        nodes = [n for n in list_nodes(address=self.address) if n.state == "ALIVE"]
        total_gpus = sum(n.resources_total.get("GPU", 0.0) for n in nodes)
        total_cpus = sum(n.resources_total.get("CPU", 0.0) for n in nodes)
        used_gpus = sum(job.gpus for job in running)
        used_cpus = sum(job.cpus for job in running)
        largest_gpus = max((n.resources_total.get("GPU", 0.0) for n in nodes), default=0.0)
        largest_cpus = max((n.resources_total.get("CPU", 0.0) for n in nodes), default=0.0)
        return Capacity(
            min(total_gpus - used_gpus, largest_gpus),
            min(total_cpus - used_cpus, largest_cpus),
            largest_gpus,
            largest_cpus,
        )

    def _submit_next(self, capacity: Capacity) -> None:
        with self.sessions() as session:
            attempt = claim_next(
                session, self.name, capacity.gpus, capacity.cpus, SPEC_VERSION, self.settings.quota_running_jobs
            )
        if attempt is not None:
            self._submit(attempt)

    def _submit(self, attempt: Attempt) -> None:
        with self.sessions() as session:
            job = session.get(Job, attempt.job_id)
            assert job is not None
            gpus, cpus, sid = job.gpus, job.cpus, submission_id(job, attempt)
        env = entrypoint_env(os.environ)  # noqa: TID251  (the settings a Ray job gets, passed on)
        try:
            self.client.submit_job(
                entrypoint=f"{self.settings.ray_python} -m workers.run_attempt {attempt.job_id} {attempt.number}",
                submission_id=sid,
                entrypoint_num_cpus=cpus,
                entrypoint_num_gpus=gpus,
                metadata={"cifar_jobs_job": str(attempt.job_id), "attempt": str(attempt.number)},
                runtime_env={"env_vars": env},
            )
            log.info("job %s attempt %s submitted as %s (%g GPUs, %g CPUs)", attempt.job_id, attempt.number, sid,
                     gpus, cpus)  # fmt: skip
        except RuntimeError as exc:
            if "already exists" in str(exc):
                return  # submitted before this dispatcher restarted
            log.warning("job %s: submission refused (%s); back to the queue", attempt.job_id, str(exc)[:300])
            hand_back(self.sessions, attempt)

    def _reconcile(self, job: Job, submissions: dict[str, Any]) -> None:
        attempt = Attempt(job.id, job.attempts)
        sid = submission_id(job, attempt)
        submitted = submissions.get(sid)
        if submitted is None:  # claimed, then this dispatcher stopped before it submitted
            self._submit(attempt)
            return
        status = submitted.status.value
        now = time.monotonic()
        if status in ACTIVE:
            with self.sessions() as session:
                touch_heartbeat(session, attempt)
                node = submitted.driver_node_id
                if node and (job.placement or {}).get("node") != node:
                    record_placement(session, attempt, {"node": node, "ray_submission_id": sid})
            if now - self._logs_copied.get(sid, 0.0) >= self.settings.logs_every_seconds:
                self._copy_logs(sid, attempt)
            self._stop_if_asked(job, attempt, sid, now)
            return
        self._copy_logs(sid, attempt)  # ended: whatever it printed, then how it ended if it did not say
        self._final_logs.add(sid)
        message = f"the Ray job {sid} ended {status} without recording a result: {submitted.message or ''}".strip()
        outcome = lose_attempt(self.sessions, attempt, message)
        if outcome is not None:
            log.warning("job %s: %s; %s", job.id, message, outcome)

    def _stop_if_asked(self, job: Job, attempt: Attempt, sid: str, now: float) -> None:
        timeout = job.timeout_s
        if (
            timeout is not None
            and job.started_at is not None
            and utcnow() - job.started_at > timedelta(seconds=timeout)
        ):
            fail_attempt(self.sessions, attempt, f"timed out: the attempt ran longer than timeout_s={timeout}")
            self.client.stop_job(sid)
            return
        if job.cancel_requested:
            first = self._cancel_seen.setdefault(sid, now)
            if now - first >= self.settings.stop_grace_seconds:
                log.info("job %s: cancelled %.0f s ago and still running; Ray stops it", job.id, now - first)
                self.client.stop_job(sid)

    def _copy_logs(self, sid: str, attempt: Attempt) -> None:
        with self.sessions() as session:
            job = session.get(Job, attempt.job_id)
            if job is None or submission_id(job, attempt) != sid:  # deleted, or another database's job
                return
        try:
            text = self.client.get_job_logs(sid)
        except RuntimeError:
            return
        with self.sessions() as session:
            save_log(session, attempt.job_id, attempt.number, text)
        self._logs_copied[sid] = time.monotonic()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = DispatcherSettings()
    entrypoint_env(os.environ)  # noqa: TID251  (refuses a password it would pass on, before anything starts)
    require_token_auth(settings.ray_address)
    RayDispatcher(settings).run()


if __name__ == "__main__":
    main()
