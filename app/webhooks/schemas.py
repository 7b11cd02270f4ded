"""What the webhook routes take and send back."""

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

EventKind = Literal[
    "job.succeeded", "job.failed", "job.cancelled", "job.stopped_early", "job.preempted", "job.alert", "sweep.finished"
]
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=2000,
        description="Where deliveries are POSTed: http or https, resolving only to public addresses unless the "
        "service sets WEBHOOK_ALLOW_PRIVATE=true.",
        examples=["https://example.org/cifar-jobs-hook"],
    )
    events: list[EventKind] = Field(min_length=1, max_length=len(EVENT_KINDS), description="The events to deliver.")
    secret: str | None = Field(
        None,
        min_length=24,
        max_length=100,
        pattern=r"^whsec_[A-Za-z0-9+/=]+$",
        description="The signing secret, `whsec_` then base64 (at least 18 bytes); omitted, one is made. It is "
        "shown in this answer only.",
    )


class WebhookPublic(BaseModel):
    id: int
    url: str
    events: list[str]
    created_at: datetime
    pending: int = Field(description="Deliveries not yet answered with a 2xx (retrying).")


class WebhookCreated(WebhookPublic):
    secret: str = Field(
        description="Verify each delivery with it (Standard Webhooks: `webhook-id`, `webhook-timestamp` and "
        "`webhook-signature` headers). Never shown again."
    )


class AttemptPublic(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None = Field(description="What the receiver answered (None: no answer).")
    answer: str = Field(description="The first 500 characters of its answer.")
    error: str | None = Field(description="Why there was no answer (a timeout, a refused address, ...).")
    seconds: float


class DeliveryPublic(BaseModel):
    id: int
    event_id: int = Field(description="The event's id, sent as `webhook-id: evt_<id>` (the same on every retry).")
    type: str = Field(description="The event's kind (`job.succeeded`, ...).")
    job_id: int | None
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None = Field(description="When a pending delivery is tried again.")
    created_at: datetime
    delivered_at: datetime | None
    data: dict[str, Any] = Field(description="The event's data, as delivered.")
    attempt_log: list[AttemptPublic] = Field(description="Each attempt, oldest first (the newest 50).")


class DeliveriesPublic(BaseModel):
    deliveries: list[DeliveryPublic] = Field(description="Newest first.")
    total: int
    limit: int
    offset: int


class TestQueued(BaseModel):
    event_id: int = Field(description="The test event, delivered like any other (see the webhook's deliveries).")
