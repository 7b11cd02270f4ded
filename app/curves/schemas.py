"""A job's curve as /metrics sends it."""

from typing import Literal

from pydantic import BaseModel, Field

from store.tables import JobStatus


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


class SystemSample(BaseModel):
    attempt: int
    step: int = Field(description="The training step when it was taken.")
    seconds: float = Field(description="Since the attempt's training process started.")
    cpu: float = Field(description="CPU time over wall time since the last sample, as a fraction of the job's `cpus`.")
    rss_mb: float = Field(description="Resident memory of the training process.")
    data_wait: float | None = Field(description="Fraction of the last stretch's training time spent preparing batches.")
    gpu_util: float | None = Field(description="Fraction of time the GPU ran kernels (NVML); None on a CPU.")
    gpu_mem_mb: float | None = Field(description="GPU memory the training process holds; None on a CPU.")


class SystemPublic(BaseModel):
    job_id: int
    samples: list[SystemSample]
