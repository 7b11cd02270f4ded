"""Reading and writing artifacts; metadata queries never load the blobs."""

import hashlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, sessionmaker

from store.blobs import ObjectMissing, delete_artifacts, objects_of, required_objects, write_object
from store.errors import ArtifactCorrupt, NoModel
from store.jobs import OwnedBy, find_job
from store.tables import Artifact, ArtifactKind, Job, JobStatus, utcnow
from store.transitions import WITH_MODEL


@dataclass(frozen=True)
class ArtifactInfo:
    job_id: int
    size_bytes: int
    sha256: str
    step: int


def put_artifact(session: Session, job_id: int, kind: ArtifactKind, data: bytes, step: int = 0) -> ArtifactInfo:
    """Store (or replace) the job's artifact of this kind: in the session's object store when it has one (the
    object written now, the replaced one deleted after the commit), else in the row. No commit."""
    sha = hashlib.sha256(data).hexdigest()
    objects = objects_of(session)
    key = None if objects is None else objects.key_for(job_id, kind.value, sha)
    this_one = (Artifact.job_id == job_id) & (Artifact.kind == kind.value)
    if objects is not None and key is not None and session.scalar(select(Artifact.object_key).where(this_one)) != key:
        write_object(session, objects, key, data)  # (the same bytes again: their object is there already)
    delete_artifacts(session, this_one, keeping=key)
    session.add(
        Artifact(
            job_id=job_id,
            kind=kind.value,
            created_at=utcnow(),
            size_bytes=len(data),
            sha256=sha,
            step=step,
            data=data if key is None else None,
            object_key=key,
        )
    )
    return ArtifactInfo(job_id, len(data), sha, step)


def artifact_infos(session: Session, job_ids: list[int], kind: ArtifactKind) -> dict[int, ArtifactInfo]:
    rows = session.execute(
        select(Artifact.job_id, Artifact.size_bytes, Artifact.sha256, Artifact.step).where(
            Artifact.job_id.in_(job_ids), Artifact.kind == kind.value
        )
    )
    return {r.job_id: ArtifactInfo(r.job_id, r.size_bytes, r.sha256, r.step) for r in rows}


def read_artifact(session: Session, job_id: int, kind: ArtifactKind) -> tuple[ArtifactInfo, bytes] | None:
    """The artifact and its bytes (from its row or its object), checked against their stored SHA-256
    (ArtifactCorrupt when they differ: a damaged disk, a hand-edited database or a rewritten object must not
    reach a model loader)."""
    row = session.execute(
        select(Artifact.size_bytes, Artifact.sha256, Artifact.step, Artifact.data, Artifact.object_key).where(
            Artifact.job_id == job_id, Artifact.kind == kind.value
        )
    ).first()
    if row is None:
        return None
    data = (
        bytes(row.data)
        if row.object_key is None
        else _object_bytes(session, row.object_key, row.size_bytes, job_id, kind)
    )
    if hashlib.sha256(data).hexdigest() != row.sha256:
        raise ArtifactCorrupt(job_id, kind.value)
    return ArtifactInfo(job_id, row.size_bytes, row.sha256, row.step), data


def _object_bytes(session: Session, key: str, size: int, job_id: int, kind: ArtifactKind) -> bytes:
    try:
        return required_objects(session, key).get(key, size)
    except ObjectMissing:
        raise ArtifactCorrupt(job_id, kind.value) from None


def best_model_job(session: Session, passed_over: Collection[int] = (), owned_by: OwnedBy | None = None) -> int | None:
    """The succeeded job with a model and the best final test accuracy (newest on ties), leaving out
    the jobs `passed_over` (their models are damaged, say); only `owned_by`'s when given."""
    accuracy = Job.final_metrics["test_accuracy"].as_float()
    owner = [] if owned_by is None else [owned_by.condition(Job.owner_id)]
    query = (
        select(Job.id)
        .join(Artifact, (Artifact.job_id == Job.id) & (Artifact.kind == ArtifactKind.model.value))
        .where(Job.status == JobStatus.succeeded.value, Job.id.not_in(list(passed_over)), *owner)
        .order_by(accuracy.desc(), Job.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def model_info(session: Session, job_id: int) -> ArtifactInfo:
    """The job's model metadata, without the blob. Raises JobNotFound, or NoModel for a job without one."""
    job = find_job(session, job_id)
    if JobStatus(job.status) not in WITH_MODEL:
        raise NoModel(f"job {job_id} is {job.status}: only succeeded (or stopped_early) jobs have a model")
    found = artifact_infos(session, [job_id], ArtifactKind.model).get(job_id)
    if found is None:
        raise NoModel(f"job {job_id} {job.status} but has no stored model")
    return found


def model_file(session: Session, job_id: int) -> bytes:
    """The job's model file. Raises JobNotFound, or NoModel for a job without one."""
    job = find_job(session, job_id)
    if JobStatus(job.status) not in WITH_MODEL:
        raise NoModel(f"job {job_id} is {job.status}: only succeeded (or stopped_early) jobs have a model")
    found = read_artifact(session, job_id, ArtifactKind.model)
    if found is None:
        raise NoModel(f"job {job_id} {job.status} but has no stored model")
    return found[1]


CHUNK_BYTES = 1024 * 1024


def verify_model(session: Session, info: ArtifactInfo, chunk_bytes: int = CHUNK_BYTES) -> None:
    """Read the model in chunks and check its SHA-256 (raises ArtifactCorrupt, or NoModel when it is
    gone): before a download sends its first byte under that hash as ETag, or a job starts from it."""
    key = _model_key(session, info)
    if key is not None:
        try:
            digest = required_objects(session, key).sha256(key, info.size_bytes)
        except ObjectMissing:
            raise ArtifactCorrupt(info.job_id, ArtifactKind.model.value) from None
        if digest != info.sha256:
            raise ArtifactCorrupt(info.job_id, ArtifactKind.model.value)
        return
    hashed = hashlib.sha256()
    for offset in range(0, info.size_bytes, chunk_bytes):
        hashed.update(_model_chunk(session, info, offset, chunk_bytes))
    if hashed.hexdigest() != info.sha256:
        raise ArtifactCorrupt(info.job_id, ArtifactKind.model.value)


def _the_model(info: ArtifactInfo) -> ColumnElement[bool]:
    return (
        (Artifact.job_id == info.job_id)
        & (Artifact.kind == ArtifactKind.model.value)
        & (Artifact.sha256 == info.sha256)
    )


def _model_key(session: Session, info: ArtifactInfo) -> str | None:
    """The model's object key, or None when its bytes are in its row. NoModel when it is gone."""
    found = session.execute(select(Artifact.object_key).where(_the_model(info))).first()
    if found is None:
        raise NoModel(f"job {info.job_id}'s model was deleted during the download")
    key: str | None = found.object_key
    return key


def _model_chunk(session: Session, info: ArtifactInfo, offset: int, chunk_bytes: int) -> bytes:
    found = session.execute(
        select(Artifact.object_key, func.substr(Artifact.data, offset + 1, chunk_bytes)).where(_the_model(info))
    ).first()
    if found is None:
        raise NoModel(f"job {info.job_id}'s model was deleted during the download")
    key, chunk = found
    if key is not None:
        try:
            return required_objects(session, key).get_range(key, offset, chunk_bytes)
        except ObjectMissing:
            raise NoModel(f"job {info.job_id}'s model was deleted during the download") from None
    return bytes(chunk)


def model_chunks(
    sessions: sessionmaker[Session], info: ArtifactInfo, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[bytes]:
    """The model file of `info` in chunks, each read in its own short transaction: a download holds at
    most one chunk in memory, and no connection while the client reads. Stops (raises NoModel) when
    the model is deleted or replaced meanwhile."""
    for offset in range(0, info.size_bytes, chunk_bytes):
        with sessions() as session:
            yield _model_chunk(session, info, offset, chunk_bytes)
