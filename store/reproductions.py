"""Reproductions as stored: a job run again with the same spec, linked to the job it reproduces, and the verdict
kept once both have ended."""

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from store.errors import JobNotFinished, StoreError
from store.jobs import find_job
from store.tables import Job, JobStatus, utcnow
from store.transitions import FINISHED

# what a reproduction takes over from its job as stored (the spec and what the queue reads of it)
COPIED = ("name", "model", "spec", "max_steps", "priority", "max_attempts", "timeout_s", "gpus", "cpus",
          "spec_version", "request_sha256", "training_sha256", "training_sha256_any_steps")  # fmt: skip


class NotAReproduction(StoreError):
    """The job was not made by POST /jobs/{id}/reproduce."""


def create_reproduction(session: Session, job_id: int, owner_id: int | None = None) -> Job:
    """A queued job with `job_id`'s stored spec (its seed, data set and `init_from_job` included), linked to it,
    owned by `owner_id`, flushed (it has its id). Raises JobNotFound, or JobNotFinished for a job still queued
    or running."""
    original = find_job(session, job_id)
    if JobStatus(original.status) not in FINISHED:
        raise JobNotFinished(f"job {job_id} is {original.status}: a job is reproduced once it has ended")
    copy = Job(
        **{column: getattr(original, column) for column in COPIED},
        status=JobStatus.queued.value,
        created_at=utcnow(),
        attempts=0,
        handed_back=0,
        step=0,
        cancel_requested=False,
        early_stop_requested=False,
        reproduces=original.id,
        owner_id=owner_id,
    )
    session.add(copy)
    session.flush()
    return copy


def keep_verdict(session: Session, job_id: int, verdict: dict[str, Any]) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(reproduction=verdict))
