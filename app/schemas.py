"""What the API sends back, and the /predict JSON body. Job specs are the kinds' classes (`models.kinds`)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from store.artifacts import ArtifactInfo
from store.tables import MAX_INT32, Job, JobStatus

TOP_K_DEFAULT, TOP_K_MAX = 3, 100  # how many best classes /predict lists
MAX_IMAGES_PER_REQUEST = 256  # the schema's cap; MAX_IMAGES_PER_REQUEST (settings) may only lower it


class Progress(BaseModel):
    step: int = Field(description="Training steps done.")
    max_steps: int
    fraction: float = Field(description="step / max_steps")
    steps_per_second: float | None = Field(None, description="Training speed, evaluation time left out.")
    images_per_second: float | None = None


class JobPublic(BaseModel):
    id: int
    name: str | None
    model: str
    status: JobStatus
    spec: dict[str, Any] = Field(description="The spec as the job runs it, every default filled in.")
    progress: Progress
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    queued_seconds: float | None = Field(None, description="From submission to the (last) start.")
    running_seconds: float | None = Field(None, description="From the (last) start to the end, or to now.")
    attempts: int
    executor: Literal["local", "ray"] | None = Field(
        None, description="Who runs (or last ran) it: a local worker, or the Ray dispatcher."
    )
    placement: dict[str, Any] | None = Field(
        None, description='Where: `{"worker": name}` locally; `{"node": id, "ray_submission_id": id}` on Ray.'
    )
    cancel_requested: bool
    error: str | None = Field(None, description="Why the job failed, when it did.")
    waiting_reason: str | None = Field(
        None, description="Why a queued job cannot start: no running worker could take it (its `gpus`, `cpus`)."
    )
    final_metrics: dict[str, Any] | None = Field(
        None, description="test_accuracy, best_test_accuracy, train_loss, steps_per_second, peak_rss_mb, ..."
    )
    trained_model: "ModelInfo | None" = Field(None, description="The stored model, once the job has succeeded.")

    @classmethod
    def from_job(
        cls, job: Job, now: datetime, model: "ArtifactInfo | None" = None, waiting_reason: str | None = None
    ) -> "JobPublic":
        end = job.finished_at or now
        return cls(
            id=job.id,
            name=job.name,
            model=job.model,
            status=JobStatus(job.status),
            spec=job.spec,
            progress=Progress(
                step=job.step,
                max_steps=job.max_steps,
                fraction=job.step / job.max_steps if job.max_steps else 0.0,
                steps_per_second=job.steps_per_second,
                images_per_second=job.images_per_second,
            ),
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            heartbeat_at=job.heartbeat_at,
            queued_seconds=(job.started_at - job.created_at).total_seconds() if job.started_at else None,
            running_seconds=(end - job.started_at).total_seconds() if job.started_at else None,
            attempts=job.attempts,
            executor=None if job.worker is None and job.placement is None else _executor(job),
            placement=job.placement or ({"worker": job.worker} if job.worker else None),
            cancel_requested=job.cancel_requested,
            error=job.error,
            waiting_reason=waiting_reason,
            final_metrics=job.final_metrics,
            trained_model=ModelInfo(
                size_bytes=model.size_bytes, sha256=model.sha256, download_url=f"/jobs/{job.id}/model"
            )
            if model
            else None,
        )


def _executor(job: Job) -> Literal["local", "ray"]:
    ray = (job.worker or "").startswith("ray:") or "ray_submission_id" in (job.placement or {})
    return "ray" if ray else "local"


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int = Field(description="Jobs matching the filters, over all pages.")


class PointPublic(BaseModel):
    step: int
    split: Literal["train", "test"]
    loss: float
    accuracy: float


class MetricsPublic(BaseModel):
    job_id: int
    status: JobStatus
    points: list[PointPublic]
    next_since: int | None = Field(
        None, description="More points follow: ask again with since=next_since. None on the last page."
    )


class Health(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]


class ErrorMessage(BaseModel):
    """Every error the API answers (but 422): `message` says what is wrong, naming the field, file or job,
    and what the client can do; `detail` repeats it (FastAPI's field, which older clients read)."""

    message: str
    detail: str


class FieldError(BaseModel):
    type: str
    loc: list[str | int] = Field(description="Where: `body`/`query`/`path`/`header`, then the field's path.")
    msg: str


class ValidationErrorMessage(BaseModel):
    """A 422: `message` names each refused field (`hidden_units[0]: ...`); `detail` lists them one by one."""

    message: str
    detail: list[FieldError]


class ModelInfo(BaseModel):
    size_bytes: int
    sha256: str
    download_url: str = Field(description="GET it for the safetensors file.")


class TopK(BaseModel):
    label: str
    probability: float


class FileError(BaseModel):
    status: int = Field(description="The HTTP status this file alone would get: 400, 413 or 415.")
    message: str = Field(description="What is wrong with the file (its limit, its format) and what to do.")


class Prediction(BaseModel):
    """One uploaded file's answer: its classes, or (`error`) why it could not be read; the other files of
    the request are answered all the same."""

    filename: str
    label: str | None = None
    class_index: int | None = None
    probabilities: dict[str, float] | None = None
    top_k: list[TopK] | None = None
    error: FileError | None = None


class PredictionsPublic(BaseModel):
    job_id: int = Field(description="The job whose model answered.")
    model: str
    predictions: list[Prediction] = Field(
        description="In the order of the uploads; a file that could not be read has an `error` instead of classes "
        "(when no file could be read, the request gets that error's status)."
    )


class PredictJSON(BaseModel):
    model_config = {"extra": "forbid"}

    images: list[str] = Field(
        min_length=1,
        max_length=MAX_IMAGES_PER_REQUEST,
        description="Base64-encoded image files (PNG, JPEG, BMP, GIF, WebP).",
    )
    job_id: int | None = Field(
        None, ge=1, le=MAX_INT32, description="The model to use; default: the best succeeded job."
    )
    top_k: int = Field(TOP_K_DEFAULT, ge=1, le=TOP_K_MAX)


JobPublic.model_rebuild()
