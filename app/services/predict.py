"""Answering /predict: pick the model, load it (cached), decode the images, run them as one batch."""

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from app.db.artifacts import best_model_job, read_artifact
from app.db.jobs import JobNotFound, get_job
from app.db.tables import ArtifactKind, JobStatus
from app.schemas import Prediction, PredictionsPublic, TopK
from app.services.errors import ServiceError
from app.services.images import Upload, decode_upload
from app.services.model_cache import ModelCache
from app.settings import Settings
from models.artifacts import unpack_model
from models.predict import Predictor, load_predictor


def model_bytes(session: Session, job_id: int) -> bytes:
    """The job's model file; 404 for an unknown job, 409 for one without a model."""
    try:
        job = get_job(session, job_id)
    except JobNotFound:
        raise ServiceError(404, f"job {job_id} not found") from None
    if job.status != JobStatus.succeeded:
        raise ServiceError(409, f"job {job_id} is {job.status}: only succeeded jobs have a model")
    found = read_artifact(session, job_id, ArtifactKind.model)
    if found is None:
        raise ServiceError(409, f"job {job_id} succeeded but has no stored model")
    return found[1]


def _load(sessions: sessionmaker[Session], job_id: int) -> tuple[str, Predictor]:
    with sessions() as session:
        data = model_bytes(session, job_id)
    artifact = unpack_model(data)
    return artifact.spec["model"], load_predictor(artifact)


def choose_job(sessions: sessionmaker[Session], job_id: int | None) -> int:
    if job_id is not None:
        return job_id
    with sessions() as session:
        best = best_model_job(session)
    if best is None:
        raise ServiceError(409, "no succeeded job with a model yet: train one first (POST /jobs)")
    return best


def predict(
    sessions: sessionmaker[Session],
    cache: ModelCache,
    settings: Settings,
    uploads: list[Upload],
    job_id: int | None,
    top_k: int,
) -> PredictionsPublic:
    """Blocking work (database, decoding, inference): run it off the event loop."""
    if not uploads:
        raise ServiceError(422, "files: send at least one image")
    if len(uploads) > settings.max_images_per_request:
        raise ServiceError(413, f"files: {len(uploads)} images, over the limit of {settings.max_images_per_request}")
    chosen = choose_job(sessions, job_id)
    model_kind, predictor = cache.get(chosen, lambda: _load(sessions, chosen))
    images = np.stack([decode_upload(u, settings.max_image_bytes, settings.max_image_pixels) for u in uploads])
    probabilities = predictor.probabilities(images)  # one batch for the whole request
    names = predictor.class_names
    k = min(top_k, len(names))
    predictions = []
    for upload, probs in zip(uploads, probabilities, strict=True):
        order = np.argsort(-probs, kind="stable")[:k]
        best = int(order[0])
        predictions.append(
            Prediction(
                filename=upload.filename,
                label=names[best],
                class_index=best,
                probabilities={name: float(p) for name, p in zip(names, probs, strict=True)},
                top_k=[TopK(label=names[i], probability=float(probs[i])) for i in order],
            )
        )
    return PredictionsPublic(job_id=chosen, model=model_kind, predictions=predictions)
