"""Jobs as the API shows them: the row plus its model's size and hash (never the blob), and their curves."""

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from app.http.refusals import InvalidField
from app.jobs.schemas import JobPublic, JobsPublic
from models.kinds import KINDS, KindNotInstalled, architecture_mismatch
from specs import JobSpec
from store.artifacts import artifact_infos, model_info, verify_model
from store.attempts import preempted_for
from store.errors import ArtifactCorrupt, JobNotFound, KeyRaced, NoModel
from store.executors import alive_since, waiting_reason
from store.jobs import NEWEST_FIRST, JobFilter, JobOrder, OwnedBy, create_job, find_job, job_for_key, list_jobs
from store.settings import StoreSettings
from store.tables import ArtifactKind, Job, JobStatus, utcnow
from store.unit_of_work import unit_of_work


def job_public(session: Session, job: Job, settings: StoreSettings) -> JobPublic:
    """The job as the API shows it; a queued one says why it waits when no executor seen in the last
    EXECUTOR_ALIVE_SECONDS could take it, or when its owner has QUOTA_RUNNING_JOBS running."""
    models = artifact_infos(session, [job.id], ArtifactKind.model)
    reason = (
        waiting_reason(session, job, alive_since(settings.executor_alive_seconds), settings.quota_running_jobs)
        if job.status == JobStatus.queued
        else None
    )
    preemptor = preempted_for(session, job)
    if reason is None and preemptor is not None:
        priority = "" if preemptor.priority is None else f", priority {preemptor.priority}"
        reason = (f"preempted at step {preemptor.step} to make room for job {preemptor.job_id}{priority}: it resumes "
                  "from that step when a place frees, before the jobs of its priority submitted after it")  # fmt: skip
    return JobPublic.from_job(job, utcnow(), models.get(job.id), reason)


def submit(
    sessions: sessionmaker[Session],
    spec: JobSpec,
    idempotency_key: str | None,
    owner_id: int | None,
    settings: StoreSettings,
    admit: Callable[[Session, Job], None],
) -> tuple[JobPublic, bool]:
    """Queue the job, and `admit` it (the quota check, its audit entry: counted with the job in, one query, and two
    at once take turns) in one unit of work; (the job, whether it is new). An Idempotency-Key already used for the
    same spec answers that first job, also when another request with the key inserted first meanwhile."""
    try:
        with unit_of_work(sessions) as session:
            job, created = create_job(session, spec, idempotency_key, owner_id)
            if created:
                admit(session, job)
            return job_public(session, job, settings), created
    except KeyRaced:
        with sessions() as session:
            first = job_for_key(session, spec, idempotency_key or "", owner_id)
            if first is None:
                raise
            return job_public(session, first, settings), False


def check_init_from_job(session: Session, spec: JobSpec, owned_by: OwnedBy | None = None) -> None:
    """A spec that starts from an earlier job needs one with a model of the same kind and architecture (and, with
    `owned_by`, one of that owner's); InvalidField (a 422 naming `init_from_job`) says what is wrong otherwise, and
    KindNotInstalled (a 409) that its kind is no longer installed."""
    source_id = spec.init_from_job
    if source_id is None:
        return
    try:
        if owned_by is not None and find_job(session, source_id).owner_id != owned_by.user_id:
            raise JobNotFound(source_id)  # someone else's, hidden from this caller
        info = model_info(session, source_id)
        verify_model(session, info)
    except JobNotFound:
        raise InvalidField("init_from_job", f"job {source_id} not found") from None
    except (NoModel, ArtifactCorrupt) as exc:
        raise InvalidField("init_from_job", str(exc)) from None
    source_spec = find_job(session, source_id).spec
    if source_spec.get("model") not in KINDS:
        raise KindNotInstalled(str(source_spec.get("model")))  # a 409: its plugin was uninstalled
    mismatch = architecture_mismatch(source_spec, spec)
    if mismatch is not None:
        raise InvalidField("init_from_job", f"job {source_id} cannot seed this spec: {mismatch}")


def jobs_page(
    session: Session, which: JobFilter, limit: int, offset: int, order: JobOrder = NEWEST_FIRST
) -> JobsPublic:
    jobs, count = list_jobs(session, which, limit, offset, order)
    models = artifact_infos(session, [j.id for j in jobs], ArtifactKind.model)
    now = utcnow()
    data = [JobPublic.from_job(j, now, models.get(j.id)) for j in jobs]
    return JobsPublic(data=data, count=count)


# The two reads pollers repeat take the session factory rather than FastAPI's session and job
# dependencies: FastAPI runs each sync dependency in the thread pool separately, and those extra
# thread hand-offs (each waiting for the GIL) were most of a poll's latency under load.


def read_job(sessions: sessionmaker[Session], job_id: int, settings: StoreSettings) -> JobPublic:
    """GET /jobs/{id}. Raises JobNotFound."""
    with sessions() as session:
        return job_public(session, find_job(session, job_id), settings)
