"""Jobs as the API shows them: the row plus its model's size and hash (never the blob), and their curves."""

import json
from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker

from app.schemas import JobPublic, JobsPublic
from store.artifacts import artifact_infos
from store.jobs import find_job, list_jobs
from store.points import PointRow, read_points
from store.tables import ArtifactKind, Job, JobStatus, utcnow


def job_public(session: Session, job: Job) -> JobPublic:
    models = artifact_infos(session, [job.id], ArtifactKind.model)
    return JobPublic.from_job(job, utcnow(), models.get(job.id))


def jobs_page(session: Session, status: JobStatus | None, model: str | None, limit: int, offset: int) -> JobsPublic:
    jobs, count = list_jobs(session, status, model, limit, offset)
    models = artifact_infos(session, [j.id for j in jobs], ArtifactKind.model)
    now = utcnow()
    return JobsPublic(data=[JobPublic.from_job(j, now, models.get(j.id)) for j in jobs], count=count)


# The two reads pollers repeat take the session factory rather than FastAPI's session and job
# dependencies: FastAPI runs each sync dependency in the thread pool separately, and those extra
# thread hand-offs (each waiting for the GIL) were most of a poll's latency under load.


def read_job(sessions: sessionmaker[Session], job_id: int) -> JobPublic:
    """GET /jobs/{id}. Raises JobNotFound."""
    with sessions() as session:
        return job_public(session, find_job(session, job_id))


def read_metrics_json(sessions: sessionmaker[Session], job_id: int, since: int | None) -> bytes:
    """GET /jobs/{id}/metrics as JSON bytes. Raises JobNotFound."""
    with sessions() as session:
        return metrics_json(find_job(session, job_id), read_points(session, job_id, since))


def metrics_json(job: Job, points: Sequence[PointRow]) -> bytes:
    """GET /jobs/{id}/metrics as JSON bytes (the MetricsPublic schema), built straight from the rows:
    a poller may ask for thousands of points many times a second, and per-point models cost more
    than the query. Stored losses and accuracies are always finite (the training loop stops on a
    non-finite loss), so plain JSON numbers suffice."""
    body = {
        "job_id": job.id,
        "status": job.status,
        "points": [{"step": s, "split": sp, "loss": lo, "accuracy": acc} for s, sp, lo, acc in points],
    }
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
