"""`python -m workers.ray_dispatcher`: the Ray executor. Moves queued jobs, highest priority first, to
a Ray cluster as Ray Jobs, and keeps the database the record of every job.

It runs the executor pass (`workers/executor.py`) every DISPATCH_SECONDS over `RayJobs`, its placement:
what one job can get is the cluster's nodes less what its running jobs asked for; an attempt runs while
its Ray job is pending or running; a cancel not acted on within STOP_GRACE_SECONDS, or `timeout_s`, stops
the Ray job; a Ray job that ended without recording an outcome (node lost, process killed, out of memory)
is requeued with Ray's message until `max_attempts`, then failed with it (`store/attempts.py::lose_attempt`);
nothing more is submitted while one of its submissions is still pending, so priorities and timeouts keep
their meaning.

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
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import Any

import httpx
from pydantic import Field
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from store.attempts import Attempt, PlacedJob, lose_attempt
from store.engine import session_factory_for
from store.executors import remove_executor
from store.migrate import upgrade
from store.settings import StoreSettings
from store.unit_of_work import transact, unit_of_work
from workers.executor import Capacity, ExecutorPass, Placed
from workers.settings import WorkerSettings

log = logging.getLogger("workers.ray_dispatcher")
PREFIX = "cifar-jobs-"
ACTIVE = {"PENDING", "RUNNING"}
# the settings an entrypoint needs, passed on when set here (DATABASE_URL only without a password): every store
# setting (how it reaches the database and the artifact store: a timeout set here holds there too), where boto3
# finds the object store's credentials (a file every node can read: never a key itself), and the training
# process's own
PASSED_ENV = (*(name.upper() for name in StoreSettings.model_fields), "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
              "AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION", "DOWNLOAD_DATASETS", "FLUSH_SECONDS",
              "CHECKPOINT_MIN_SECONDS", "TRAINING_NICE", "TRAINING_MEMORY_LIMIT_MB", "CPU_BF16", "OMP_NUM_THREADS",
              "SYSTEM_METRICS_SECONDS")  # fmt: skip


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


def submission_id(job: PlacedJob, attempt: Attempt) -> str:
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
    if "ARTIFACT_STORE" in env and "AWS_SECRET_ACCESS_KEY" in environ and "AWS_SHARED_CREDENTIALS_FILE" not in env:
        log.warning("ARTIFACT_STORE: the object store's key is in this environment, and a Ray job is never given a "
                    "key: the nodes need their own credentials (AWS_SHARED_CREDENTIALS_FILE, a file every node can "
                    "read, or an instance role)")  # fmt: skip
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
    log.info("the Ray cluster at %s refuses requests without its token, as it should", address)


class RayJobs:
    """The Ray placement: each attempt a Ray Job, found again by its submission id."""

    role = "ray dispatcher"

    def __init__(self, settings: DispatcherSettings, sessions: sessionmaker[Session]) -> None:
        from ray.job_submission import JobSubmissionClient

        self.settings, self.sessions = settings, sessions
        self.address = settings.ray_address
        self.name = f"ray:{self.address}"
        self.client = JobSubmissionClient(self.address)
        self.submissions: dict[str, Any] = {}  # this pass's view of the cluster's jobs of ours, by submission id
        self.sids: dict[Attempt, str] = {}

    def refresh(self) -> None:
        self.submissions = {
            job.submission_id: job
            for job in self.client.list_jobs()
            if job.submission_id is not None and job.submission_id.startswith(PREFIX)
        }

    def adopt(self, running: Sequence[PlacedJob]) -> list[Attempt]:
        """Every submission of ours (a restarted dispatcher copies the last output of those that ended meanwhile),
        and every job the store says it runs (claimed, perhaps never submitted)."""
        for sid in self.submissions:
            self.sids[_attempt_of(sid)] = sid
        for job in running:
            attempt = Attempt(job.id, job.attempts)
            self.sids[attempt] = submission_id(job, attempt)
        return list(self.sids)

    def capacity(self, running: Sequence[PlacedJob]) -> Capacity:
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

    def ready(self) -> bool:
        """Ray could not place the last one yet: submit nothing more until it starts (priorities and timeouts
        keep their meaning)."""
        return not any(s.status.value == "PENDING" for s in self.submissions.values())

    def state(self, attempt: Attempt) -> Placed:
        submitted = self.submissions.get(self.sids.get(attempt, ""))
        if submitted is None:
            return Placed.absent
        return Placed.running if submitted.status.value in ACTIVE else Placed.ended

    def place(self, job: PlacedJob, attempt: Attempt) -> None:
        sid = self.sids[attempt] = submission_id(job, attempt)
        env = entrypoint_env(os.environ)  # noqa: TID251  (the settings a Ray job gets, passed on)
        try:
            self.client.submit_job(
                entrypoint=f"{self.settings.ray_python} -m workers.run_attempt {attempt.job_id} {attempt.number}",
                submission_id=sid,
                entrypoint_num_cpus=job.cpus,
                entrypoint_num_gpus=job.gpus,
                metadata={"cifar_jobs_job": str(attempt.job_id), "attempt": str(attempt.number)},
                runtime_env={"env_vars": env},
            )
            log.info("job %s attempt %s submitted as %s (%g GPUs, %g CPUs)", attempt.job_id, attempt.number, sid,
                     job.gpus, job.cpus)  # fmt: skip
        except RuntimeError as exc:
            if "already exists" in str(exc):
                return  # submitted before this dispatcher restarted
            # an attempt lost, not handed back: a job Ray always refuses fails after max_attempts, instead of being
            # claimed first again at every pass with nothing behind it starting
            why = f"Ray refused its submission: {str(exc)[:500]}"
            status = transact(self.sessions, lambda session: lose_attempt(session, attempt, why))
            log.warning("job %s: submission refused (%s); %s", attempt.job_id, str(exc)[:300], status or "gone")

    def where(self, attempt: Attempt) -> dict[str, Any] | None:
        sid = self.sids[attempt]
        node = self.submissions[sid].driver_node_id
        return {"node": node, "ray_submission_id": sid} if node else None

    def output(self, attempt: Attempt, job: PlacedJob) -> tuple[str, bool] | None:
        sid = self.sids[attempt]
        if submission_id(job, attempt) != sid:  # another database's job of the same id
            return None
        try:
            return self.client.get_job_logs(sid), False
        except RuntimeError:
            return None

    def output_not_saved(self, attempt: Attempt) -> None:
        pass  # the whole output is read again next time

    def halt(self, attempt: Attempt) -> None:
        self.client.stop_job(self.sids[attempt])

    def settle(self, attempt: Attempt, job: PlacedJob) -> None:
        sid = self.sids[attempt]
        submitted = self.submissions[sid]
        message = f"the Ray job {sid} ended {submitted.status.value} without recording a result: " \
                  f"{submitted.message or ''}".strip()  # fmt: skip
        outcome = transact(self.sessions, lambda session: lose_attempt(session, attempt, message))
        if outcome is not None:
            log.warning("job %s: %s; %s", job.id, message, outcome)

    def forget(self, attempt: Attempt) -> None:
        self.sids.pop(attempt, None)


class RayDispatcher:
    def __init__(self, settings: DispatcherSettings) -> None:
        self.settings = settings
        self.engine, self.sessions = session_factory_for(settings)
        self.placement = RayJobs(settings, self.sessions)
        self.executor = ExecutorPass(self.placement, self.sessions, settings, settings.logs_every_seconds)
        self.stopping = False

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True  # Ray jobs run on without the dispatcher; the next one finds them by id

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        upgrade(self.engine)
        log.info("dispatching to the Ray cluster at %s", self.settings.ray_address)
        try:
            while not self.stopping:
                try:
                    self.executor.run_once()
                except Exception:  # the cluster or the database away for a moment: try again
                    log.exception("dispatcher pass failed")
                time.sleep(self.settings.dispatch_seconds)
        finally:
            with unit_of_work(self.sessions) as session:
                remove_executor(session, self.placement.name)
            self.engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its line for the token check's expected 401 alarms
    settings = DispatcherSettings()
    entrypoint_env(os.environ)  # noqa: TID251  (refuses a password it would pass on, before anything starts)
    require_token_auth(settings.ray_address)
    RayDispatcher(settings).run()


if __name__ == "__main__":
    main()
