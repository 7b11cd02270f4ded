"""Answering /predict: pick the model, load it (cached), decode the images, run them as one batch."""

import threading
from functools import partial

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from app.http.errors import status_of
from app.http.refusals import InvalidField, RequestRefused, TooLarge
from app.predict.images import PixelBudget, Upload, decode_upload
from app.predict.model_cache import LoadedModel, ModelCache
from app.predict.schemas import FileError, Prediction, PredictionsPublic, TopK
from app.runtime.heap import freezing_what_it_imports
from app.settings import ApiSettings
from models.artifacts import unpack_model
from models.kinds import load_predictor
from models.training.precision import cpu_model, given_verdict, measure_in_subprocess, use_verdict
from store.artifacts import best_model_job, model_file, model_info
from store.cpu_verdicts import kept_verdict
from store.errors import ArtifactCorrupt, NoModel
from store.jobs import OwnedBy


class _CpuVerdict:
    """The kept bfloat16 verdict of this CPU model (`store.cpu_verdicts`), read (or measured, by the first
    process on the model) before the first model loads: the API predicts in the precision the workers train in."""

    def __init__(self) -> None:
        self.lock, self.known = threading.Lock(), False

    def ensure(self, sessions: sessionmaker[Session]) -> None:
        with self.lock:
            if not self.known:
                if given_verdict() is None:  # CPU_BF16 set for this process decides without the store
                    use_verdict(kept_verdict(sessions, cpu_model(), measure_in_subprocess, "the API").bf16)
                self.known = True


_cpu_verdict = _CpuVerdict()


def _load(sessions: sessionmaker[Session], job_id: int) -> LoadedModel:
    _cpu_verdict.ensure(sessions)
    with sessions() as session:
        data = model_file(session, job_id)
    artifact = unpack_model(data)
    return LoadedModel(artifact.spec["model"], load_predictor(artifact))


MAX_DAMAGED_PASSED_OVER = 20  # bounds the work of one request that finds damaged models


def load_model(
    sessions: sessionmaker[Session], cache: ModelCache, job_id: int | None, owned_by: OwnedBy | None = None
) -> tuple[int, LoadedModel]:
    """The model of `job_id`, or of the best succeeded job (of `owned_by`'s, when given) whose model is intact (a
    damaged one is passed over, and remembered as damaged). Raises JobNotFound, NoModel or ArtifactCorrupt."""
    passed_over: list[int] = []
    while True:
        with sessions() as session:
            chosen = job_id if job_id is not None else best_model_job(session, passed_over, owned_by)
            if chosen is None:
                raise NoModel("no succeeded job with an intact model yet: train one first (POST /jobs)")
            info = model_info(session, chosen)  # JobNotFound / NoModel, e.g. for a deleted job
        try:
            # the first model imports torch (the API starts without it): what that brings lives as long as the
            # process (app.runtime.heap)
            load = partial(freezing_what_it_imports, partial(_load, sessions, chosen))
            return chosen, cache.get((chosen, info.sha256), info.size_bytes, load)
        except ArtifactCorrupt:
            if job_id is not None or len(passed_over) >= MAX_DAMAGED_PASSED_OVER:
                raise
            passed_over.append(chosen)


def predict(
    sessions: sessionmaker[Session],
    cache: ModelCache,
    settings: ApiSettings,
    uploads: list[Upload],
    job_id: int | None,
    top_k: int,
    owned_by: OwnedBy | None = None,
) -> PredictionsPublic:
    """Blocking work (database, decoding, inference): run it off the event loop."""
    if not uploads:
        raise InvalidField("files", "send at least one image")
    if len(uploads) > settings.max_images_per_request:
        raise TooLarge(f"files: {len(uploads)} images, over the limit of {settings.max_images_per_request}")
    chosen, loaded = load_model(sessions, cache, job_id, owned_by)
    budget = PixelBudget(settings.max_request_pixels)
    images: list[np.ndarray] = []
    refused: dict[int, RequestRefused] = {}  # each file is answered on its own
    for i, upload in enumerate(uploads):
        try:
            images.append(decode_upload(upload, settings.max_image_bytes, settings.max_image_pixels, budget))
        except RequestRefused as exc:
            refused[i] = exc
    if not images:  # nothing to answer: the request gets the (first) file's error
        raise refused[0]
    probabilities = iter(loaded.predictor.probabilities(np.stack(images)))  # one batch for the whole request
    names = loaded.predictor.class_names
    k = min(top_k, len(names))
    predictions = []
    for i, upload in enumerate(uploads):
        if i in refused:
            error = FileError(status=status_of(refused[i]), message=str(refused[i]))
            predictions.append(Prediction(filename=upload.filename, error=error))
            continue
        probs = next(probabilities)
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
    return PredictionsPublic(job_id=chosen, model=loaded.model_kind, predictions=predictions)
