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
