"""What the job routes send back."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from store.artifacts import ArtifactInfo
from store.tables import Job, JobStatus


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
    error: str | None = Field(
        None, description="Why the job failed, when it did; for one an alert rule stopped, the rule and what it saw."
    )
    alerts_fired: list[dict[str, Any]] = Field(
        [],
        description='The spec\'s alert rules that fired: `{"rule": its index in spec.alerts, "when", "action", "step", '
        '"message", "at"}`, oldest first.',
    )
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
            alerts_fired=job.alerts_fired or [],
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


class ModelInfo(BaseModel):
    size_bytes: int
    sha256: str
    download_url: str = Field(description="GET it for the safetensors file.")


JobPublic.model_rebuild()
