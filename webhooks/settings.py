"""The delivery process's settings (the API reads `webhook_allow_private` from here too, to check new URLs)."""

from pydantic import Field

from store.settings import StoreSettings


class WebhookSettings(StoreSettings):
    webhook_allow_private: bool = Field(
        False,
        description="Let webhook URLs reach loopback, private, link-local and metadata addresses (off: a URL that "
        "resolves to one is refused when added and again at each delivery).",
    )
    webhook_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="How long one delivery may take in all: the name's lookup, connecting, sending and the answer "
        "(at most 0.8 of WEBHOOK_LEASE_SECONDS is used).",
    )
    webhook_retry_base_seconds: float = Field(
        5.0, gt=0, description="The wait after a delivery's first failed attempt; it doubles after each one."
    )
    webhook_retry_max_seconds: float = Field(3600.0, gt=0, description="The longest wait between two attempts.")
    webhook_give_up_seconds: float = Field(
        86400.0, gt=0, description="A delivery still failing this long after its event is given up (status failed)."
    )
    webhook_lease_seconds: float = Field(
        60.0,
        gt=0,
        description="How long a delivery process holds a delivery it is sending; one that dies mid-send leaves it "
        "to another after this. Keep it above WEBHOOK_TIMEOUT_SECONDS.",
    )
    webhook_poll_seconds: float = Field(
        0.25, gt=0, description="How long an idle delivery thread waits before looking again."
    )
    webhook_concurrency: int = Field(4, ge=1, le=64, description="Deliveries sent at once by one delivery process.")
    webhook_max_in_flight: int = Field(
        3,
        ge=1,
        le=64,
        description="Deliveries one delivery process sends to one webhook at once: a slow receiver holds no more "
        "(keep it below WEBHOOK_CONCURRENCY, so that other webhooks always have a turn).",
    )
    outbox_retention_days: float = Field(
        30.0,
        gt=0,
        description="Job events and ended (delivered or failed) webhook deliveries older than this are deleted by "
        "the delivery process (an event a pending delivery still owes stays).",
    )
    outbox_housekeeping_seconds: float = Field(
        3600.0, gt=0, description="How often the delivery process deletes what is past OUTBOX_RETENTION_DAYS."
    )
